"""The server's counters in the Prometheus text format (`GET /metrics`), without a client library.

ttc_requests_total{endpoint,status,strategy}   requests answered (strategy: what ran; "-" where none did)
ttc_generations_total, ttc_prompt_tokens_total, ttc_generated_tokens_total, ttc_verifier_tokens_total
ttc_fallbacks_total                            auto requests that fell back to majority voting
ttc_request_latency_seconds{endpoint}          histogram, arrival to answer
ttc_batch_questions                            histogram, questions per batch of the queue
ttc_in_flight                                  requests admitted and not yet answered
process_resident_memory_bytes                  the server's resident memory
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
TOKENS = ("generations", "prompt_tokens", "generated_tokens", "verifier_tokens")


def resident_memory() -> int:
    """This process's resident memory in bytes (Linux: /proc; elsewhere the peak from getrusage)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b:g}"}} {n}' for b, n in zip(self.buckets, self.counts, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        braces = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{braces} {self.sum:.6f}", f"{name}_count{braces} {self.count}"]


class Metrics:
    """Updated from the event loop and the batching thread (hence the lock); rendered on request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, int, str]] = Counter()
        self.tokens: Counter[str] = Counter()
        self.fallbacks = 0
        self.latency: dict[str, Histogram] = {}
        self.batches = Histogram(BATCH_BUCKETS)
        self.in_flight_of: Callable[[], int] = lambda: 0  # the server's in-flight gate

    def request(self, endpoint: str, status: int, strategy: str = "-", seconds: float | None = None) -> None:
        with self.lock:
            self.requests[(endpoint, status, strategy)] += 1
            if seconds is not None:
                self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def spent(self, usage: dict, fallback: bool = False) -> None:
        """Count a response's `usage` (`search.serve.responses.usage`)."""
        with self.lock:
            self.tokens.update({k: usage.get("completion_tokens" if k == "generated_tokens" else k, 0) for k in TOKENS})
            self.fallbacks += fallback

    def batch(self, questions: int) -> None:
        with self.lock:
            self.batches.observe(questions)

    def render(self) -> str:
        with self.lock:
            lines = ["# HELP ttc_requests_total Requests answered, by endpoint, HTTP status and the strategy that ran.",
                     "# TYPE ttc_requests_total counter"]  # fmt: skip
            for (endpoint, status, strategy), n in sorted(self.requests.items()):
                lines.append(f'ttc_requests_total{{endpoint="{endpoint}",status="{status}",strategy="{strategy}"}} {n}')
            for key in TOKENS:
                lines += [f"# TYPE ttc_{key}_total counter", f"ttc_{key}_total {self.tokens[key]}"]
            lines += ["# TYPE ttc_fallbacks_total counter", f"ttc_fallbacks_total {self.fallbacks}"]
            lines += ["# HELP ttc_request_latency_seconds From arrival to the answer's last byte.",
                      "# TYPE ttc_request_latency_seconds histogram"]  # fmt: skip
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines("ttc_request_latency_seconds", f'endpoint="{endpoint}"')
            lines += [
                "# HELP ttc_batch_questions Questions per batch of the queue.",
                "# TYPE ttc_batch_questions histogram",
            ]
            lines += self.batches.lines("ttc_batch_questions")
            lines += ["# TYPE ttc_in_flight gauge", f"ttc_in_flight {self.in_flight_of()}"]
            lines += [
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {resident_memory()}",
            ]
        return "\n".join(lines) + "\n"
