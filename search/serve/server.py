"""`python -m search serve`: load the models and the schedule, serve them with uvicorn.

    python -m search serve --config recipes/arith-tiny/serve.yaml
    python -m search serve --config recipes/arith-tiny/serve.yaml \\
        --compute_optimal outputs/arith-tiny/eval/schedule.json

SIGTERM (or Ctrl-C) stops accepting connections and lets the requests in flight finish, up to `drain_timeout`
seconds (uvicorn's graceful shutdown); then the batching queue finishes what it holds and the server exits.
"""

from __future__ import annotations

import logging

from core.config import UserError
from search.serve.settings import AUTO, ServeConfig
from search.strategies.compute_optimal import ComputeOptimalSchedule
from search.strategies.strategy import NEEDS_WIDTH, StrategySpec

log = logging.getLogger("search.serve")


def load(cfg: ServeConfig):
    """The app for `cfg`, its models loaded (every strategy it may run by default checked against them)."""
    from search.serve.app import create_app

    schedule = ComputeOptimalSchedule.load(cfg.compute_optimal) if cfg.compute_optimal else None
    runtime = cfg.load()
    defaults = [cfg.fallback_strategy, cfg.unscheduled_strategy] + ([] if cfg.strategy == AUTO else [cfg.strategy])
    for name in defaults:
        spec = cfg.spec(name)
        try:  # what it needs (a verifier, a revision model), at a budget it can run at
            runtime.check(spec, cfg.budget if name == cfg.strategy else _smallest_budget(spec))
        except ValueError as err:
            raise UserError(f"{name}: {err}") from None
    if schedule is None and cfg.strategy == AUTO:
        log.warning("no schedule file (--compute_optimal): auto runs %s at each request's budget",
                    cfg.unscheduled_strategy)  # fmt: skip
    elif schedule is not None and schedule.probe_score_range is None:
        log.warning("%s records no probe_score_range: auto cannot tell when the verifier is out of its range",
                    cfg.compute_optimal)  # fmt: skip
    return create_app(cfg, runtime, schedule)


def _smallest_budget(spec: StrategySpec) -> int:
    if spec.name in NEEDS_WIDTH:
        return spec.m if isinstance(spec.m, int) else 1
    return spec.length if spec.name == "revision" and isinstance(spec.length, int) else 1


def serve(cfg: ServeConfig) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = load(cfg)
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and cfg.key() is None:
        log.warning("listening on %s without an API key (--api_key or $TTC_API_KEY)", cfg.host)
    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, timeout_graceful_shutdown=cfg.drain_timeout,
                            log_level="info", access_log=False)  # fmt: skip
    uvicorn.Server(config).run()
