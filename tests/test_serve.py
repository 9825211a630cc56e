"""The OpenAI-compatible server: a real uvicorn server on 127.0.0.1 with the tiny policy and PRM, called with the
official `openai` client (and raw HTTP where a client would hide what is tested: 413, a disconnect).

Nothing here waits on a clock: where a test needs requests held in flight, the batching queue's worker is held
at a gate (an Event) and released by the test; batches are formed by count (a long window, `max_batch_questions`).
"""

import contextlib
import copy
import http.client
import json
import socket
import threading
import time
from dataclasses import replace

import openai
import pytest
import uvicorn

from core.config import UserError
from search.runtime import Runtime, probe_score
from search.serve.app import create_app
from search.serve.settings import ServeConfig
from search.step_format import ARITH
from search.strategies.compute_optimal import ComputeOptimalSchedule, ScheduleEntry, bin_of
from search.strategies.strategy import SearchSettings, StrategySpec
from search.strategies.tree_search import tree_search
from tests.fakes import ScriptedVerifier, StepGenerator

FAST = {"max_new_tokens": 40, "max_step_tokens": 12}
QUESTION = "(2+7)*3"


@pytest.fixture(scope="module")
def runtime(tiny_policy, tiny_prm):
    cfg = ServeConfig(policy=str(tiny_policy), verifier=str(tiny_prm), device="cpu", **FAST)
    return cfg.load()


@pytest.fixture(scope="module")
def schedule():
    """A schedule as `make eval` writes it: bin 0 (low probe scores: hard) searches, bin 1 samples."""
    weighted = "best_of_n:select=weighted"
    choices = {0: {2: ScheduleEntry("best_of_n:select=majority", 2), 4: ScheduleEntry("beam:m=2", 4)},
               1: {2: ScheduleEntry(weighted, 2), 4: ScheduleEntry(weighted, 4)}}  # fmt: skip
    return ComputeOptimalSchedule(probe_samples=2, bin_edges=[0.3], choices=choices, probe_score_range=(0.0, 1.0))


def config(runtime_paths, **overrides) -> ServeConfig:
    policy, prm = runtime_paths
    return ServeConfig(policy=str(policy), verifier=str(prm), device="cpu", port=0, **{**FAST, **overrides})


@contextlib.contextmanager
def serving(cfg: ServeConfig, runtime: Runtime, schedule=None, gate: threading.Event | None = None):
    """A uvicorn server with `create_app` on a free port, in a thread; yields (base URL, app, server). With `gate`,
    every batch waits for the gate before it runs."""
    app = create_app(cfg, runtime, schedule)
    if gate is not None:
        batcher, run = app.state.ttc.batcher, app.state.ttc.batcher.run
        batcher.run = lambda jobs: (gate.wait(), run(jobs))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=cfg.drain_timeout))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app, server
    finally:
        if gate is not None:
            gate.set()
        server.should_exit = True
        thread.join()


def client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def chat(ai: openai.OpenAI, question: str = QUESTION, **kwargs):
    """A chat completion of one user question (kwargs: the client's, extra_body included)."""
    return ai.chat.completions.create(model="ttc-search", messages=[{"role": "user", "content": question}], **kwargs)


def wait_until(condition) -> None:
    """Poll a condition of the server's state (liveness only: no test asserts on how long it takes)."""
    while not condition():
        time.sleep(0.01)


def get(url: str, path: str) -> tuple[int, str]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", path)
    response = conn.getresponse()
    out = response.status, response.read().decode()
    conn.close()
    return out


def post(url: str, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    out = response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    conn.close()
    return out


@pytest.fixture(scope="module")
def paths(tiny_policy, tiny_prm):
    return tiny_policy, tiny_prm


@pytest.fixture(scope="module")
def server(paths, runtime, schedule):
    """One server for the tests that need no special limits: the schedule loaded, auto by default."""
    with serving(config(paths, budget=4, max_budget=8, reasoning_efforts="low=2,medium=4,high=8"), runtime,
                 schedule) as (url, app, _):  # fmt: skip
        yield url, app


def test_chat_completion_answers_with_honest_usage(server, runtime):
    url, _ = server
    ai = client(url)
    assert [m.id for m in ai.models.list().data] == ["ttc-search"]
    reply = chat(ai, extra_body={"strategy": "best_of_n", "budget": 4, "return_candidates": True})
    ttc, usage = reply.model_extra["ttc"], reply.usage
    [expected] = runtime.solve(StrategySpec.parse("best_of_n"), [QUESTION], 4, seed=0)  # the runtime, called directly
    assert reply.choices[0].message.content == ARITH.render_steps(expected.solution)
    assert (ttc["mode"], ttc["strategy"], ttc["budget"]) == ("explicit", "best_of_n:select=weighted", 4)
    assert ttc["generations"] == 4
    assert ttc["answer"] == expected.answer and len(ttc["candidates"]) == 4 and ttc["trace_id"] in reply.id
    acc = expected.accounting
    assert (usage.prompt_tokens, usage.completion_tokens) == (acc.prompt_tokens, acc.generated_tokens)
    assert usage.model_extra["verifier_tokens"] == acc.verifier_tokens > 0
    assert usage.total_tokens == acc.prompt_tokens + acc.generated_tokens + acc.verifier_tokens
    again = chat(ai, extra_body={"strategy": "best_of_n", "budget": 4})
    assert again.choices[0].message.content == reply.choices[0].message.content  # seeded: the same answer
    text = ai.completions.create(model="ttc-search", prompt=[QUESTION, "4-1"], extra_body={"strategy": "best_of_n",
                                                                                          "budget": 4})  # fmt: skip
    assert text.choices[0].text == reply.choices[0].message.content and len(text.choices) == 2
    greedy = chat(ai, temperature=0, max_tokens=30, extra_body={"strategy": "best_of_n", "budget": 2,
                                                                 "return_candidates": True})  # fmt: skip
    [expected] = replace_settings(runtime, temperature=0.0, max_new_tokens=30).solve(
        StrategySpec.parse("best_of_n"), [QUESTION], 2, seed=0)  # fmt: skip
    assert greedy.choices[0].message.content == ARITH.render_steps(expected.solution)
    assert len({c["answer"] for c in greedy.model_extra["ttc"]["candidates"]}) == 1  # greedy: one solution, twice


def replace_settings(runtime: Runtime, **overrides) -> Runtime:
    """The same models with other sampling settings (what the server does for a request that sets them)."""
    other = copy.copy(runtime)
    other.settings = replace(runtime.settings, **overrides)
    return other


def test_streaming_sends_progress_then_the_same_solution(server):
    url, _ = server
    ai = client(url)
    kwargs = {"model": "ttc-search", "messages": [{"role": "user", "content": QUESTION}],
              "extra_body": {"strategy": "beam:m=2", "budget": 4}}  # fmt: skip
    chunks = list(ai.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    rounds = [c.model_extra["ttc"] for c in chunks if (c.model_extra or {}).get("ttc", {}).get("event") == "round"]
    assert rounds and [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    assert all(r["best_partial"] for r in rounds)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].model_extra["ttc"]["strategy"] == "beam:m=2"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    plain = ai.chat.completions.create(**kwargs)
    assert content == plain.choices[0].message.content and chunks[-1].usage.total_tokens == plain.usage.total_tokens


def test_auto_probes_bins_and_follows_the_schedule(server, runtime, schedule):
    url, _ = server
    ai = client(url)
    reply = chat(ai)
    ttc = reply.model_extra["ttc"]
    [probe] = runtime.probe(schedule, [QUESTION], seed=0)
    chosen = schedule.choose(probe_score(probe), 4)
    assert ttc["mode"] == "auto" and ttc["predicted_bin"] == bin_of(probe_score(probe), schedule.bin_edges)
    assert (ttc["strategy"], ttc["budget"]) == (str(StrategySpec.parse(chosen.strategy)), chosen.budget)
    assert ttc["probe"]["samples"] == 2 and ttc["generations"] == chosen.budget + 2  # the probe is charged
    assert ttc["fallback"] is None and ttc["budget_from"] == "server"
    low = chat(ai, reasoning_effort="low")
    assert low.model_extra["ttc"]["budget"] == 2 and low.model_extra["ttc"]["budget_from"] == "reasoning_effort"


def test_auto_falls_back_to_majority_when_the_verifier_is_out_of_range(paths, runtime, schedule):
    shifted = replace(schedule, probe_score_range=(2.0, 3.0))  # no probe can score inside it
    with serving(config(paths, budget=4), runtime, shifted) as (url, _, _):
        reply = chat(client(url))
        ttc = reply.model_extra["ttc"]
        assert ttc["strategy"] == "best_of_n:select=majority" and ttc["budget"] == 4
        assert "out of its range" in ttc["fallback"] and ttc["predicted_bin"] is not None
        assert "ttc_fallbacks_total 1" in get(url, "/metrics")[1]


def test_score_endpoint_scores_steps_in_batches(server, runtime):
    url, _ = server
    steps = ["2+7=9", "9*3=27", "A:27"]
    status, _, body = post(url, "/v1/score", json.dumps({"question": QUESTION, "steps": steps}).encode())
    [expected] = runtime.verifier.score([ARITH.prompt(QUESTION)], [steps])
    assert status == 200 and body["data"][0]["step_scores"] == pytest.approx(expected, abs=1e-6)
    assert body["data"][0]["score"] == pytest.approx(expected[-1], abs=1e-6) and body["usage"]["verifier_tokens"] > 0
    items = [{"question": QUESTION, "steps": steps}, {"question": "4-1", "steps": ["4-1=3", "A:3"]}]
    status, _, batch = post(url, "/v1/score", json.dumps({"items": items, "aggregation": "min"}).encode())
    assert status == 200 and [d["index"] for d in batch["data"]] == [0, 1] and batch["aggregation"] == "min"
    assert batch["data"][0]["score"] == pytest.approx(min(expected), abs=1e-6)
    status, _, error = post(url, "/v1/score", json.dumps({"question": QUESTION, "steps": ["a\nb"]}).encode())
    assert status == 400 and "separator" in error["error"]["message"]


def test_concurrent_requests_share_one_batch_with_the_answers_of_one_at_a_time(paths, runtime):
    """Three requests with their own seeds in one runtime call: each gets what it would get alone."""
    cfg = config(paths, budget=4, batch_window_ms=600_000, max_batch_questions=3)  # the batch closes at 3 questions
    questions = [QUESTION, "4-1", "5*2"]
    with serving(cfg, runtime) as (url, _, _):
        ai = client(url)
        replies = [None] * 3

        def ask(i):
            replies[i] = chat(ai, questions[i], seed=i, extra_body={"strategy": "beam:m=2"})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    alone = [runtime.solve(StrategySpec.parse("beam:m=2"), [q], 4, seed=i)[0] for i, q in enumerate(questions)]
    assert [r.model_extra["ttc"]["batched_with"] for r in replies] == [2, 2, 2]
    assert [r.choices[0].message.content for r in replies] == [ARITH.render_steps(a.solution) for a in alone]


def test_an_api_key_is_required_when_set(paths, runtime):
    with serving(config(paths, api_key="sesame"), runtime) as (url, _, _):
        with pytest.raises(openai.AuthenticationError) as err:
            chat(client(url, "wrong"), "4-1")
        assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
        body = json.dumps({"model": "ttc-search", "messages": [{"role": "user", "content": "4-1"}]}).encode()
        status, headers, error = post(url, "/v1/chat/completions", body)  # no Authorization header at all
        assert status == 401 and error["error"]["type"] == "authentication_error" and "www-authenticate" in {
            k.lower() for k in headers}  # fmt: skip
        assert client(url, "sesame").models.list().data[0].id == "ttc-search"
        assert get(url, "/health")[0] == 200  # health checks need no key


def test_bad_requests_are_openai_style_400s(server):
    url, _ = server
    ai = client(url)
    ask = {"model": "ttc-search", "messages": [{"role": "user", "content": "4-1"}]}
    for extra, param in [({"budget": 9}, "budget"), ({"strategy": "beam:m=3", "budget": 4}, "strategy"),
                         ({"strategy": "greedy"}, "strategy"), ({"stratgy": "beam"}, "stratgy"), ({"n": 2}, "n"),
                         ({"tools": [{"type": "function"}]}, "tools")]:  # fmt: skip
        with pytest.raises(openai.BadRequestError) as err:
            ai.chat.completions.create(**ask, extra_body=extra)
        assert err.value.status_code == 400 and err.value.body["param"] == param, extra
    with pytest.raises(openai.BadRequestError, match="max_new_tokens"):
        ai.chat.completions.create(**ask, max_tokens=1000)
    with pytest.raises(openai.BadRequestError, match="max_budget"):
        ai.chat.completions.create(**ask, extra_body={"budget": 100})
    with pytest.raises(openai.NotFoundError):
        ai.chat.completions.create(**{**ask, "model": "gpt-4o"})


def test_a_body_over_the_limit_is_413(paths, runtime):
    with serving(config(paths, max_body_bytes=2_000), runtime) as (url, _, _):
        big = json.dumps({"model": "ttc-search", "messages": [{"role": "user", "content": "1+" * 2_000 + "1"}]})
        status, _, body = post(url, "/v1/chat/completions", big.encode())
        assert status == 413 and body["error"]["code"] == "request_too_large"
        with pytest.raises(openai.APIStatusError) as err:
            chat(client(url), "1+" * 2_000 + "1")
        assert err.value.status_code == 413


def test_the_in_flight_limit_answers_429_with_retry_after(paths, runtime):
    gate = threading.Event()
    with serving(config(paths, max_in_flight=1, budget=2), runtime, gate=gate) as (url, app, _):
        ai = client(url)
        first = {}
        held = threading.Thread(target=lambda: first.update(r=chat(ai, "4-1")))  # fmt: skip
        held.start()
        wait_until(lambda: app.state.ttc.gate.count == 1)
        with pytest.raises(openai.RateLimitError) as err:
            chat(ai, "5-1")
        assert err.value.status_code == 429 and int(err.value.response.headers["retry-after"]) >= 1
        gate.set()
        held.join()
        assert first["r"].choices[0].finish_reason in ("stop", "length")


def test_a_client_that_disconnects_frees_its_slot_and_cancels_its_search(paths, runtime):
    gate = threading.Event()
    with serving(config(paths, max_in_flight=1, budget=2), runtime, gate=gate) as (url, app, _):
        state = app.state.ttc
        host, port = url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        body = json.dumps({"model": "ttc-search", "messages": [{"role": "user", "content": "4-1"}]}).encode()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        wait_until(lambda: state.gate.count == 1)
        sock.close()  # the client goes away while its search waits
        wait_until(lambda: state.gate.count == 0)
        gate.set()
        reply = chat(client(url), "4-1")
        assert reply.choices[0].message.content  # the slot is free: 200, not 429
        metrics = get(url, "/metrics")[1]
        assert 'status="499"' in metrics  # counted as a client that went away
        assert "ttc_generations_total 2\n" in metrics  # only the second request's search ran: the first was dropped


def test_a_disconnected_question_stops_at_the_next_round_and_the_batch_goes_on():
    spec = StrategySpec.parse("beam:m=2")
    kwargs = {"fmt": ARITH, "settings": SearchSettings(max_step_tokens=8, max_new_tokens=64), "budget": 4, "seed": 0}
    full = tree_search(spec, ["q1", "q2"], StepGenerator(5), ScriptedVerifier(), **kwargs)
    seen = []

    def progress(round_, best):
        seen.append((round_, [b is not None for b in best]))
        return [0] if round_ == 0 else []  # q1's client went away after the first round

    gen = StepGenerator(5)
    stopped = tree_search(spec, ["q1", "q2"], gen, ScriptedVerifier(), progress=progress, **kwargs)
    assert seen[0] == (0, [True, True])
    assert all(ARITH.question_of(p.split("\n")[0] + "\n") == "q2" for call in gen.calls[1:] for p in call["prompts"])
    assert stopped[1].candidates == full[1].candidates and stopped[0].answer is None


def test_search_timeout_is_504(paths, runtime):
    gate = threading.Event()
    with serving(config(paths, search_timeout=0.2), runtime, gate=gate) as (url, _, _):
        with pytest.raises(openai.APIStatusError) as err:
            chat(client(url), "4-1")
        assert err.value.status_code == 504 and err.value.body["code"] == "timeout"


def test_shutdown_drains_the_requests_in_flight(paths, runtime):
    gate = threading.Event()
    with serving(config(paths, budget=2), runtime, gate=gate) as (url, app, server):
        ai, out = client(url), {}
        held = threading.Thread(target=lambda: out.update(r=chat(ai, "4-1")))  # fmt: skip
        held.start()
        wait_until(lambda: app.state.ttc.gate.count == 1)
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        host, port = url.removeprefix("http://").split(":")

        def refused() -> bool:
            try:
                socket.create_connection((host, int(port))).close()
                return False
            except ConnectionRefusedError:
                return True

        wait_until(refused)  # no new connections while draining
        gate.set()
        held.join()
        assert out["r"].choices[0].message.content  # the request in flight got its answer


def test_the_schedule_file_keeps_its_calibration_range_and_old_files_still_load(schedule, tmp_path):
    schedule.save(tmp_path / "schedule.json")
    loaded = ComputeOptimalSchedule.load(tmp_path / "schedule.json")
    assert (
        loaded == schedule and loaded.in_range(0.5) and not replace(loaded, probe_score_range=(0.6, 0.9)).in_range(0.5)
    )
    record = json.loads((tmp_path / "schedule.json").read_text())
    del record["probe_score_range"]  # a file make eval wrote before the key existed
    (tmp_path / "old.json").write_text(json.dumps(record))
    old = ComputeOptimalSchedule.load(tmp_path / "old.json")
    assert old.probe_score_range is None and old.in_range(5.0)
    (tmp_path / "bad.json").write_text(json.dumps({**record, "probe_score_range": [0.9, 0.1]}))
    with pytest.raises(UserError, match="probe_score_range"):
        ComputeOptimalSchedule.load(tmp_path / "bad.json")


def test_bench_serve_runs_its_arms_and_drains_on_sigterm(paths, tmp_path):
    """make bench-serve, bounded: a real server process, both batching arms, auto vs fixed with intervals."""
    from bench import serve as bench_serve
    from data import export_questions

    policy, prm = paths
    questions = tmp_path / "questions.jsonl"
    export_questions.main(["--policy", str(policy), "--split", "test", "--questions_per_level", "1",
                           "--output_file", str(questions)])  # fmt: skip
    report = bench_serve.main(["--policy", str(policy), "--verifier", str(prm), "--dataset", str(questions),
                               "--requests", "4", "--clients", "2", "--budget", "2",
                               "--server_args", "--max_new_tokens 40 --max_step_tokens 12",
                               "--output_file", str(tmp_path / "bench.json")])  # fmt: skip
    assert report["one_at_a_time"]["errors"] == report["concurrent"]["errors"] == 0
    assert report["same_answers"] == 4  # a request's answer never depends on its batch
    versus = report["auto_vs_fixed"]
    assert versus["questions"] == len(questions.read_text().splitlines()) and "no schedule" in versus["auto_note"]
    assert versus["accuracy"]["auto"]["low"] <= versus["accuracy"]["auto"]["estimate"]
    assert report["shutdown"]["drained"]
    assert json.loads((tmp_path / "bench.json").read_text())["throughput_ratio"] > 0
