"""Response bodies in the OpenAI schema, with what the search did in `usage` and `ttc`.

`usage` counts every token the search spent, the probe included: `prompt_tokens` (prefill the policy read,
over every sample and step; `prompt_tokens_details.cached_tokens` of them from the prefix cache),
`completion_tokens` (tokens the policy generated, every candidate's), `verifier_tokens` (tokens the
verifier read) and `total_tokens`, their sum. `ttc` says what ran and why: mode (auto or explicit), the
strategy and budget, generations, the probe and predicted bin, a fallback and its reason, the answer,
the trace id, how many requests shared the runtime call, and on request every candidate's answer and score.
"""

from __future__ import annotations

import time

from search.serve.jobs import SearchOutcome
from search.serve.schema import SearchRequest


def usage(outcomes: list[SearchOutcome]) -> dict:
    acc = sum((o.result.accounting for o in outcomes[1:]), outcomes[0].result.accounting)
    return {
        "prompt_tokens": acc.prompt_tokens,
        "completion_tokens": acc.generated_tokens,
        "total_tokens": acc.prompt_tokens + acc.generated_tokens + acc.verifier_tokens,
        "prompt_tokens_details": {"cached_tokens": acc.cached_prompt_tokens},
        "verifier_tokens": acc.verifier_tokens,
        "cached_verifier_tokens": acc.cached_verifier_tokens,
        "generations": acc.generations,
    }


def ttc(outcome: SearchOutcome, request: SearchRequest, trace_id: str, params: tuple[int | None, int]) -> dict:
    """What the search did for one question; `params`: the policy's and the verifier's parameter counts."""
    acc = outcome.result.accounting
    out = {
        "mode": "auto" if outcome.auto else "explicit",
        "strategy": str(outcome.spec),
        "budget": outcome.budget,
        "budget_from": request.budget_from,
        "max_generations": request.budget if outcome.auto else None,
        "generations": acc.generations,
        "predicted_bin": outcome.probe.predicted_bin if outcome.probe else None,
        "probe": outcome.probe.to_dict() if outcome.probe else None,
        "fallback": outcome.fallback,
        "note": outcome.note,
        "answer": outcome.result.answer,
        "trace_id": trace_id,
        "batched_with": outcome.group_requests - 1,
        "seed": request.seed,
    }
    if params[0] is not None:
        out["flops"] = acc.flops(params[0], params[1])
    if request.ignored_messages:
        out["ignored_messages"] = request.ignored_messages
    if request.return_candidates:
        out["candidates"] = [{"answer": c.answer, "score": round(c.score, 6)} for c in outcome.result.candidates]
    return out


def finish_reason(outcome: SearchOutcome) -> str:
    """stop: an answer; length: no candidate reached an answer within the limits."""
    return "stop" if outcome.result.answer is not None else "length"


def chat_completion(cid: str, model: str, content: str, outcome: SearchOutcome, info: dict) -> dict:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason(outcome),
                "logprobs": None,
            }
        ],  # fmt: skip
        "usage": usage([outcome]),
        "ttc": info,
    }


def completion(cid: str, model: str, texts: list[str], outcomes: list[SearchOutcome], infos: list[dict]) -> dict:
    choices = [{"index": i, "text": t, "finish_reason": finish_reason(o), "logprobs": None, "ttc": info}
               for i, (t, o, info) in enumerate(zip(texts, outcomes, infos, strict=True))]  # fmt: skip
    body = {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model, "choices": choices,
            "usage": usage(outcomes)}  # fmt: skip
    if len(infos) == 1:
        body["ttc"] = infos[0]
    return body


def chunk(cid: str, model: str, chat: bool, delta: dict | None = None, text: str = "", finish: str | None = None,
          **extra) -> dict:  # fmt: skip
    """One server-sent event of a stream (`chat.completion.chunk` or a `text_completion` piece)."""
    if chat:
        choice = {"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}
        body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        body = {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model}
    return {**body, "choices": [choice], **extra}
