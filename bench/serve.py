"""`make bench-serve`: the OpenAI-compatible server under load, in one bounded run, against its own baseline.

    python -m bench.serve --dataset outputs/arith-tiny/test_questions.jsonl \\
        --compute_optimal outputs/arith-tiny/eval/schedule.json

1. Starts `python -m search serve --config <serve_recipe>` in its own process on a free port of 127.0.0.1.
2. Batching: `requests` chat completions (`strategy` at `budget`; request i asks question i of the dataset, round
   robin, with seed i) sent one at a time, then the same requests from `clients` concurrent clients. Per arm:
   wall-clock, requests per second, p50 and p99 latency, errors; the ratio of the two throughputs (the goal: >= 4x
   on the tiny model); whether every answer is the same both ways (a request's samples depend on its seed and
   question only, never on its batch); the server's resident memory before and after.
3. auto vs fixed: every dataset question asked once with auto (at most `budget` generations; the probe charged)
   and once with `compare` at `budget`, `clients` at a time: accuracy and generations per question, each with its
   95% interval, and the paired differences (bootstrap over questions, `core.stats`).
4. SIGTERM: the server drains and exits (uvicorn re-raises the signal after its graceful shutdown, so the exit
   status is -15); whether its log shows the shutdown completed.
Writes `output_file` (JSON) and prints a table.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import UserError, cli, parse_config
from core.stats import Ratio, interval
from search.grading import answers_match
from search.questions import Question, load_questions


@dataclass
class BenchServeConfig:
    serve_recipe: str = "recipes/arith-tiny/serve.yaml"  # the server's recipe (search.serve.settings.ServeConfig)
    policy: str | None = None  # overrides the recipe's policy
    verifier: str | None = None  # overrides the recipe's verifier
    compute_optimal: str | None = None  # make eval's schedule.json; without it auto runs unscheduled (noted)
    dataset: str = "outputs/arith-tiny/test_questions.jsonl"  # question JSONL with answers (data.export_questions)
    requests: int = 200  # requests in each arm of the batching comparison
    clients: int = 16  # concurrent clients
    strategy: str = "best_of_n"  # what the batching comparison's requests run
    budget: int = 16  # their budget N; also auto's most generations and the fixed arm's N
    compare: str = "best_of_n"  # the fixed arm of auto vs fixed
    server_args: str = ""  # more flags for the server (e.g. "--batch_window_ms 20")
    startup_timeout: float = 900.0  # seconds the server may take to load
    output_file: str = "outputs/arith-tiny/bench_serve.json"  # the report (JSON); the server log beside it

    def __post_init__(self) -> None:
        if min(self.requests, self.clients, self.budget) < 1 or self.startup_timeout <= 0:
            raise ValueError("requests, clients and budget must be >= 1, startup_timeout > 0")


CONFIG_TYPES = (BenchServeConfig,)


class Server:
    """`python -m search serve` in its own process."""

    def __init__(self, cfg: BenchServeConfig, log: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "search", "serve", "--config", cfg.serve_recipe, "--host", "127.0.0.1",
                "--port", str(self.port), *shlex.split(cfg.server_args)]  # fmt: skip
        for key in ("policy", "verifier", "compute_optimal"):
            if getattr(cfg, key):
                args += [f"--{key}", getattr(cfg, key)]
        self.log = log.open("w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + cfg.startup_timeout
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise UserError(f"the server did not start (exit {self.process.returncode}); see {log}")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def memory(self) -> int:
        """The server's resident memory in bytes, as its /metrics reports it."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("process_resident_memory_bytes "):
                    return int(float(line.split()[1]))
        return -1

    def stop(self) -> int | None:
        """SIGTERM: the server drains its requests and exits; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def ask(client, question: str, seed: int, **extra) -> tuple[float, dict | None, str | None]:
    """One chat completion: its latency, its `ttc` (None on an error) and the error."""
    started = time.perf_counter()
    try:
        reply = client.chat.completions.create(model="ttc-search", seed=seed, extra_body=extra,
                                               messages=[{"role": "user", "content": question}])  # fmt: skip
        ttc = dict(reply.model_extra["ttc"], content=reply.choices[0].message.content)
        return time.perf_counter() - started, ttc, None
    except Exception as err:  # noqa: BLE001 - every failure is counted and reported
        return time.perf_counter() - started, None, f"{type(err).__name__}: {err}"


def arm(client, jobs: list[tuple[str, int, dict]], clients: int) -> dict:
    """Send `jobs` (question, seed, extra fields), `clients` at a time; wall-clock, latencies, errors, outcomes."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda job: ask(client, job[0], job[1], **job[2]), jobs))
    wall = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    return {
        "requests": len(jobs),
        "clients": clients,
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(jobs) / wall, 3),
        "p50_s": round(statistics.median(latencies), 3),
        "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
        "errors": sum(r[2] is not None for r in results),
        "first_error": next((r[2] for r in results if r[2]), None),
        "outcomes": [r[1] for r in results],
    }


def compare(client, questions: list[Question], cfg: BenchServeConfig) -> dict:
    """auto vs `compare` at `budget` on every question, with intervals."""
    auto = arm(client, [(q.text, 0, {"strategy": "auto", "budget": cfg.budget}) for q in questions], cfg.clients)
    fixed = arm(client, [(q.text, 0, {"strategy": cfg.compare, "budget": cfg.budget}) for q in questions], cfg.clients)
    if auto["errors"] or fixed["errors"]:
        return {"errors": auto["errors"] + fixed["errors"], "first_error": auto["first_error"] or fixed["first_error"]}
    right = {name: [float(answers_match(o["answer"], q.gold)) for o, q in zip(a["outcomes"], questions, strict=True)]
             for name, a in (("auto", auto), ("fixed", fixed))}  # fmt: skip
    spent = {name: [float(o["generations"]) for o in a["outcomes"]] for name, a in (("auto", auto), ("fixed", fixed))}
    return {
        "questions": len(questions),
        "fixed": f"{cfg.compare} at N={cfg.budget}",
        "accuracy": {k: interval(Ratio.mean(v)).to_dict() for k, v in right.items()},
        "accuracy_difference": interval(Ratio.mean(right["auto"]) - Ratio.mean(right["fixed"])).to_dict(),
        "generations": {k: interval(Ratio.mean(v)).to_dict() for k, v in spent.items()},
        "generations_difference": interval(Ratio.mean(spent["auto"]) - Ratio.mean(spent["fixed"])).to_dict(),
        "auto_choices": dict(Counter(f"{o['strategy']}@{o['budget']}" for o in auto["outcomes"]).most_common()),
        "auto_fallbacks": sum(o["fallback"] is not None for o in auto["outcomes"]),
        "auto_note": auto["outcomes"][0]["note"],
    }


def run_bench(cfg: BenchServeConfig) -> dict:
    import openai

    questions = load_questions(cfg.dataset)
    out = Path(cfg.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    server = Server(cfg, out.with_suffix(".server.log"))
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=os.environ.get("TTC_API_KEY", "none"),
                               max_retries=0, timeout=3600)  # fmt: skip
        arm(client, [(questions[0].text, 0, {"strategy": cfg.strategy, "budget": cfg.budget})], 1)  # warm-up
        memory_before = server.memory()
        jobs = [(questions[i % len(questions)].text, i, {"strategy": cfg.strategy, "budget": cfg.budget})
                for i in range(cfg.requests)]  # fmt: skip
        one_at_a_time = arm(client, jobs, 1)
        concurrent = arm(client, jobs, cfg.clients)
        same = sum(a is not None and b is not None and a["content"] == b["content"]
                   for a, b in zip(one_at_a_time["outcomes"], concurrent["outcomes"], strict=True))  # fmt: skip
        versus = compare(client, questions, cfg)
        memory_after = server.memory()
    finally:
        exit_status = server.stop()
    for a in (one_at_a_time, concurrent):
        a.pop("outcomes")
    report = {
        "settings": asdict(cfg),
        "one_at_a_time": one_at_a_time,
        "concurrent": concurrent,
        "throughput_ratio": round(concurrent["requests_per_s"] / one_at_a_time["requests_per_s"], 3),
        "same_answers": same,
        "resident_memory_mib": {"before": round(memory_before / 2**20, 1), "after": round(memory_after / 2**20, 1)},
        "auto_vs_fixed": versus,
        "shutdown": {"exit_status": exit_status, "drained": _drained(out.with_suffix(".server.log"))},
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def _drained(log: Path) -> bool:
    """Whether the server finished its shutdown after SIGTERM (uvicorn then re-raises the signal: exit -15)."""
    return "Application shutdown complete" in log.read_text(errors="replace")


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"Batching: {s['requests']} requests ({s['strategy']} at N={s['budget']}), one at a time vs "
             f"{s['clients']} concurrent clients", "", "| arm | wall-clock s | requests/s | p50 s | p99 s | errors |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name in ("one_at_a_time", "concurrent"):
        a = report[name]
        lines.append(f"| {name.replace('_', ' ')} | {a['wall_s']:.1f} | {a['requests_per_s']:.2f} | {a['p50_s']:.2f} "
                     f"| {a['p99_s']:.2f} | {a['errors']} |")  # fmt: skip
    memory = report["resident_memory_mib"]
    lines += ["", f"throughput ratio: {report['throughput_ratio']:.2f}x; same answers both ways: "
              f"{report['same_answers']}/{s['requests']}; resident memory {memory['before']} MiB before, "
              f"{memory['after']} MiB after; SIGTERM: {'drained' if report['shutdown']['drained'] else 'NOT drained'} "
              f"(exit status {report['shutdown']['exit_status']})"]  # fmt: skip
    v = report["auto_vs_fixed"]
    if "accuracy" not in v:
        return "\n".join([*lines, "", f"auto vs fixed: {v['errors']} errors ({v['first_error']})"])

    def text(d: dict) -> str:
        return f"{d['estimate']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    lines += ["", f"auto (at most N={s['budget']}, probe included) vs {v['fixed']} on {v['questions']} questions "
              "(95% intervals, paired bootstrap over questions):", "",
              "| | auto | fixed | auto - fixed |", "|---|---:|---:|---:|",
              f"| accuracy | {text(v['accuracy']['auto'])} | {text(v['accuracy']['fixed'])} "
              f"| {text(v['accuracy_difference'])} |",
              f"| generations | {text(v['generations']['auto'])} | {text(v['generations']['fixed'])} "
              f"| {text(v['generations_difference'])} |", "",
              f"auto's choices: {v['auto_choices']}; fallbacks to majority: {v['auto_fallbacks']}"
              + (f"; note: {v['auto_note']}" if v["auto_note"] else "")]  # fmt: skip
    return "\n".join(lines)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    if not Path(cfg.dataset).is_file():
        raise UserError(f"dataset not found: {cfg.dataset} (python -m data.export_questions writes one)")
    return run_bench(cfg)


if __name__ == "__main__":
    main()
