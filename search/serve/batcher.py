"""The batching queue: concurrent requests' jobs merged into one batch for the runtime.

One worker thread owns the models. It takes the first waiting job, then waits up to `window_s` for more to
join (at most `max_jobs`), and runs them as one batch (`search.serve.engine.Engine.run`). While a batch
runs, new jobs queue up and form the next one, so under load the batches fill by themselves; the window
only gathers clients whose previous answers just went out. A job's client can give up on it at any time
(`Job.cancel`): a waiting job is dropped, a running search stops at its next round.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from search.serve.engine import settle
from search.serve.jobs import Cancelled, Job

log = logging.getLogger(__name__)


class Batcher:
    def __init__(
        self,
        run: Callable[[Sequence[Job]], None],
        window_s: float = 0.01,
        max_jobs: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.run, self.window_s, self.max_jobs, self.on_batch = run, window_s, max_jobs, on_batch
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="ttc-batcher", daemon=True)
        self.closed = False

    def start(self) -> Batcher:
        self.thread.start()
        return self

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue jobs (the jobs of one request are queued together, so they share a batch unless it is full)."""
        if self.closed:
            for job in jobs:
                settle(job, error=Cancelled("the server is shutting down"))
            return
        for job in jobs:
            self.queue.put(job)

    def close(self, timeout: float | None = None) -> None:
        """Finish the jobs queued so far, then stop the worker (at most `timeout` seconds of waiting)."""
        if not self.closed:
            self.closed = True
            self.queue.put(None)
        self.thread.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch, stop = [first], False
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_jobs:
                try:
                    job = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                self.run(batch)
            except Exception as err:  # noqa: BLE001 - the engine settles its own errors; this is the last guard
                log.exception("batch failed")
                for job in batch:
                    settle(job, error=err)
            if stop:
                return
