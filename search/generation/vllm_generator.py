"""vLLM backend of the `Generator` interface: vLLM's OpenAI-compatible servers, over HTTP.

    vllm serve outputs/arith-tiny/policy --enable-prefix-caching --enable-prompt-tokens-details
    generator = VLLMGenerator.connect("outputs/arith-tiny/policy", fmt, BackendConfig("vllm", "http://127.0.0.1:8000"))

No vLLM code runs here: the server runs from its own virtualenv (`make vllm-serve`, docs/vllm.md).
What the HF backend does, this one asks the server for, one `/v1/completions` request per sample:
- the prompt is sent as token ids, tokenized here by the step format (`StepFormat.tokenize`), so
  the server reads exactly the tokens the HF backend and the verifier read;
- each sample has its own seed, `row_seed(seed of its prompt, j)` as in the HF backend, so sample j
  of a question depends only on the seed, the question and j; the sample itself is vLLM's (its own
  sampler, not our Gumbel noise), and it is the same across calls only where the server computes the
  same logits whatever else it batches (docs/vllm.md: batch invariance);
- step mode stops at the step separator, kept in the text; EOS (the tokenizer's and the generation
  config's) stops a solution; special tokens other than EOS get a logit bias of -100 (vLLM's floor:
  a factor of e^-100, never sampled in practice); no repetition penalty, top-k or min-p, whatever
  the server's defaults;
- stop reasons map to `step` (the separator), `eos` and `length` (`max_new_tokens`, or the server's
  context: a prompt that fills it is cut off at once without a request, as in the HF backend);
- `cached_tokens` is the server's `prompt_tokens_details.cached_tokens`: prompt tokens its automatic
  prefix cache served (whole KV blocks; servers started with `--enable-prompt-tokens-details`).

The requests of one question (its prompt and every extension of it: a beam's next step, a revision)
all go to one server, picked by the question, so that server's prefix cache holds its beams; failed
requests are tried again on the next server (`search.generation.vllm_client`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from core.checkpoints import check_model_path, load_config, load_tokenizer
from search.generation.generator import Generation, SamplingParams, generation_seeds, stable_seed
from search.generation.hf_generator import banned_ids, end_ids, row_seed
from search.generation.vllm_client import ServerError, ServerPool
from search.step_format import StepFormat

if TYPE_CHECKING:
    from search.generation.settings import BackendConfig

BANNED_BIAS = -100.0  # the lowest logit bias vLLM accepts


def request_body(
    model: str,
    ids: list[int],
    params: SamplingParams,
    seed: int,
    max_tokens: int,
    separator: str | None,
    eos_ids: Sequence[int],
    banned_ids: Sequence[int],
) -> dict[str, Any]:
    """The `/v1/completions` request of one sample (see the module docstring)."""
    return {
        "model": model,
        "prompt": list(ids),
        "n": 1,
        "seed": seed,
        "max_tokens": max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": [separator] if separator is not None else [],
        "include_stop_str_in_output": True,
        "stop_token_ids": list(eos_ids),
        "logit_bias": {str(i): BANNED_BIAS for i in banned_ids},
        "skip_special_tokens": True,
    }


def to_generation(answer: Any, prompt_tokens: int, separator: str | None) -> Generation:
    """A `/v1/completions` answer of one sample as a `Generation` (a malformed answer is a `ServerError`)."""
    try:
        [choice] = answer["choices"]
        text, finish, usage = choice["text"], choice["finish_reason"], answer["usage"]
        generated = int(usage["completion_tokens"])
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        if not isinstance(text, str):
            raise TypeError(f"text is {type(text).__name__}")
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ServerError(f"not a completion answer ({type(err).__name__}: {err}): {str(answer)[:200]}") from None
    if finish not in ("stop", "length"):
        raise ServerError(f"the server ended a request with finish_reason {finish!r}")
    if separator is not None and separator in text:
        text, reason = text[: text.index(separator) + len(separator)], "step"
    else:
        reason = "length" if finish == "length" else "eos"
    return Generation(text, prompt_tokens, generated, reason, cached)


def serves(card: dict, path: str) -> bool:
    """Whether a server's model card (`/v1/models`) is the checkpoint at `path`: its id or root is the path or
    the same folder (`vllm serve PATH`), or its id is the folder's name (`--served-model-name NAME`)."""
    names = {str(card.get("id")), str(card.get("root"))}
    if path in names or Path(path).name == card.get("id"):
        return True
    return os.path.isdir(path) and any(os.path.isdir(n) and os.path.samefile(n, path) for n in names)


def affinity_key(fmt: StepFormat, prompt: str) -> str:
    """What a prompt shares with every extension of it: the text up to the end of the prompt template (the
    first end of the template after its head, so a question holding that text cuts it short, stably)."""
    head, tail = fmt.prompt_template.split("{question}")
    end = prompt.find(tail, len(head)) if tail and prompt.startswith(head) else -1
    return prompt[: end + len(tail)] if end >= 0 else prompt


class VLLMGenerator:
    """Samples from vLLM servers; see the module docstring."""

    def __init__(
        self,
        pool: ServerPool,
        names: Sequence[str],
        tokenizer: Any,
        step_format: StepFormat,
        context_length: int,
        eos_ids: Sequence[int],
        parameters: int,
    ):
        self.pool, self.names, self.tokenizer, self.format = pool, list(names), tokenizer, step_format
        self.context_length, self.eos_ids, self.parameters = context_length, sorted(eos_ids), parameters
        self.banned_ids = banned_ids(tokenizer, self.eos_ids)

    @classmethod
    def connect(cls, path: str | Path, step_format: StepFormat, backend: BackendConfig, backoff: float = 1.0):
        """A generator for the checkpoint at `path` (its tokenizer and config are read here) on the servers
        of `backend.server_urls` that serve it; a `ServerError` if none does, or one tokenizes otherwise."""
        path = check_model_path(path, "policy checkpoint")
        tokenizer = load_tokenizer(path)
        config = load_config(path, "policy checkpoint")
        settings = (backend.request_timeout, backend.max_retries)
        urls, names, contexts, listed = [], [], [], []
        for url in backend.urls():
            server = ServerPool([url], *settings, 1, backoff)
            listed_cards = server.request(0, "/v1/models").get("data")
            cards = [c for c in listed_cards if isinstance(c, dict)] if isinstance(listed_cards, list) else []
            listed += [f"{url}: {c.get('id')}" for c in cards]
            for card in cards:
                if serves(card, path):
                    check_tokenizer(server, card["id"], tokenizer, step_format)
                    urls.append(url)
                    names.append(card["id"])
                    contexts.append(card.get("max_model_len"))
                    break
        if not urls:
            raise ServerError(f"no server serves {path} (they serve: {'; '.join(listed) or 'nothing'}): start one "
                              f"with make vllm-serve MODEL={path}")  # fmt: skip
        known = [c for c in contexts if isinstance(c, int)]
        context = min(known) if known else config.max_position_embeddings
        pool = ServerPool(urls, *settings, backend.concurrency, backoff)
        return cls(
            pool, names, tokenizer, step_format, context, eos_ids(path, config, tokenizer), count_parameters(config)
        )

    def num_parameters(self) -> int:
        """The policy's parameters (for the FLOPs estimate), counted from its config without loading weights."""
        return self.parameters

    def count_tokens(self, text: str) -> int:
        return len(self.format.tokenize(self.tokenizer, text))

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, seeds: Sequence[int] | None = None
    ) -> list[list[Generation]]:
        seeds = generation_seeds(prompts, n, seeds)
        separator = self.format.step_separator if params.stop_at == "step" else None
        results: list[list[Generation]] = [[] for _ in prompts]
        calls, slots = [], []
        for i, prompt in enumerate(prompts):
            ids = self.format.tokenize(self.tokenizer, prompt)
            room = self.context_length - len(ids)
            if room < 1:  # no room to generate: cut off at once, as in the HF backend (no request: no tokens charged)
                results[i] = [Generation("", 0, 0, "length") for _ in range(n)]
                continue
            home = stable_seed("vllm-server", affinity_key(self.format, prompt)) % len(self.names)
            for j in range(n):
                seed, max_tokens = row_seed(seeds[i], j), min(params.max_new_tokens, room)
                body = request_body(self.names[home], ids, params, seed, max_tokens, separator, self.eos_ids,
                                    self.banned_ids)  # fmt: skip
                calls.append(partial(self._complete, home, body, len(ids), separator))
                slots.append(i)
        for i, generation in zip(slots, self.pool.run_all(calls), strict=True):
            results[i].append(generation)
        return results

    def _complete(self, home: int, body: dict, prompt_tokens: int, separator: str | None) -> Generation:
        return to_generation(self.pool.request(home, "/v1/completions", body), prompt_tokens, separator)


def check_tokenizer(server: ServerPool, name: str, tokenizer: Any, fmt: StepFormat) -> None:
    """Refuse a server whose tokenizer splits a rendered solution otherwise than the checkpoint's here."""
    probe = fmt.render("1+2", ["1+2=3", fmt.answer_step("3")])
    answer = server.request(0, "/tokenize", {"model": name, "prompt": probe, "add_special_tokens": False})
    mine = tokenizer(probe, add_special_tokens=False)["input_ids"]
    if answer.get("tokens") != mine:
        raise ServerError(f"{server.urls[0]} serves {name} with another tokenizer than the checkpoint's here")


def eos_ids(path: str, config: Any, tokenizer: Any) -> list[int]:
    """The ids that end a solution, as the HF backend reads them: the tokenizer's EOS and the generation
    config's."""
    try:
        generation = GenerationConfig.from_pretrained(path, trust_remote_code=False)
    except OSError:  # no generation_config.json: the model config's
        generation = GenerationConfig.from_model_config(config)
    return end_ids(tokenizer, generation.eos_token_id)


def count_parameters(config: Any) -> int:
    """Parameters of a causal LM built from `config` on the meta device (no memory, no weights read)."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config).num_parameters()
