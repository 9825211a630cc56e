"""Hugging Face transformers backend of the `Generator` interface.

Batched `generate` with left padding and the KV cache. Sampling is done per row with its
own seeded noise (Gumbel-max over the temperature/top-p distribution, then argmax), so a
sample depends only on its prompt and seed, never on the batch it was computed in; this is
what lets sharded data builders reproduce a single-process run exactly. A sample ends at EOS,
at `max_new_tokens`, or where prompt and sample fill the model's context (a length stop, as
the vLLM backend's `max_tokens` cap): never past the positions the model was trained on.

Within `reuse_prefixes()` (`search.generation.prefix_cache`) the generator keeps each output's key/value
states, and a prompt that extends a kept sequence (a beam's next step) computes only its tokens
past the longest cached prefix: the samples are those of a full pass, with the same seeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    StoppingCriteria,
    StoppingCriteriaList,
)

from core.checkpoints import check_model_path, load_policy, load_tokenizer
from search.generation.cached_forward import batch_cache, row_state
from search.generation.generator import Generation, SamplingParams, generation_seeds
from search.generation.prefix_cache import ReusesPrefixes, Start
from search.generation.settings import torch_device
from search.step_format import StepFormat

log = logging.getLogger(__name__)


def row_seed(seed: int, sample: int) -> int:
    """The seed of sample `sample` of a prompt whose seed is `seed`."""
    return (seed * 1_000_003 + sample) % (2**63 - 1)


class SeededSampler(LogitsProcessor):
    """Temperature, top-p and per-row seeded Gumbel noise; argmax of the result is a sample."""

    def __init__(self, seeds: Sequence[int], params: SamplingParams, banned_ids: Sequence[int]):
        self.temperature, self.top_p = params.temperature, params.top_p
        self.banned = torch.tensor(sorted(banned_ids), dtype=torch.long)
        self.rngs = [torch.Generator().manual_seed(s) for s in seeds] if self.temperature > 0 else []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float().clone()
        if len(self.banned):
            scores[:, self.banned.to(scores.device)] = -float("inf")
        if self.temperature == 0:
            return scores
        scores = scores / self.temperature
        if self.top_p < 1:
            sorted_scores, order = scores.sort(dim=-1, descending=True)
            probs = sorted_scores.softmax(dim=-1)
            outside = probs.cumsum(dim=-1) - probs > self.top_p  # keeps at least the top token
            scores = scores.scatter(-1, order, sorted_scores.masked_fill(outside, -float("inf")))
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.rngs])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        return scores + gumbel.to(scores.device)


class StopRecorder(StoppingCriteria):
    """Stops each row at EOS or, in step mode, right after the step separator; records where. A row
    also stops where it fills the model's context (`context_ends`: the batch width at which it does),
    a length stop: past the context a model writes from positions it never trained on."""

    def __init__(
        self, prompt_len: int, batch: int, eos_ids, step_end_ids, separator: str | None, tokenizer, context_ends=None
    ):
        self.prompt_len, self.separator, self.tokenizer = prompt_len, separator, tokenizer
        self.eos_ids, self.step_end_ids = torch.tensor(eos_ids), torch.tensor(step_end_ids)
        self.finished_at = torch.full((batch,), -1, dtype=torch.long)
        self.context_ends = None if context_ends is None else torch.tensor(context_ends)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        length, last = input_ids.shape[1], input_ids[:, -1].cpu()
        hit = torch.isin(last, self.eos_ids)
        if self.context_ends is not None:
            hit |= self.context_ends <= length
        if self.separator is not None:
            maybe = torch.isin(last, self.step_end_ids) & ~hit & (self.finished_at < 0)
            if len(self.separator) == 1:
                hit |= maybe
            else:  # a longer separator can span tokens: check the tail of the new text
                tail_start = max(self.prompt_len, length - len(self.separator))
                for row in torch.nonzero(maybe).flatten().tolist():
                    hit[row] = self.separator in self.tokenizer.decode(input_ids[row, tail_start:])
        self.finished_at[hit & (self.finished_at < 0)] = length
        return (self.finished_at >= 0).to(input_ids.device)


class HFGenerator(ReusesPrefixes):
    """Batched sampling from a causal LM; see the module docstring."""

    def __init__(self, model: PreTrainedModel, tokenizer, step_format: StepFormat, batch_size: int = 64):
        self.model, self.tokenizer, self.format, self.batch_size = model.eval(), tokenizer, step_format, batch_size
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = end_ids(self.tokenizer, model.generation_config.eos_token_id)
        self.banned_ids = banned_ids(self.tokenizer, self.eos_ids)
        # ids whose text holds the separator's last character: where a step can end
        last_char = step_format.step_separator[-1]
        vocab_text = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
        self.step_end_ids = [i for i, text in enumerate(vocab_text) if last_char in text]

    @property
    def context_length(self) -> int | None:
        """The most tokens (prompt + generation) the model was built for, if its config says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def num_parameters(self) -> int:
        """The policy's parameters (for the FLOPs estimate)."""
        return self.model.num_parameters()

    def count_tokens(self, text: str) -> int:
        return len(self.format.tokenize(self.tokenizer, text))

    @classmethod
    def from_pretrained(
        cls, path: str | Path, step_format: StepFormat, batch_size: int = 64, device: str | None = None
    ) -> HFGenerator:
        """Load a policy by local path or hub id."""
        path = check_model_path(path, "policy checkpoint")
        tokenizer = load_tokenizer(path)
        model = load_policy(path)
        return cls(model.to(torch_device(device)), tokenizer, step_format, batch_size)

    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, seeds: Sequence[int] | None = None
    ) -> list[list[Generation]]:
        seeds = generation_seeds(prompts, n, seeds)
        encoded = [self.format.tokenize(self.tokenizer, p) for p in prompts]  # each prefix encoded once
        starts = [self.prefix_cache.start(ids) if self.prefix_cache is not None else (None, 0) for ids in encoded]
        results: list[list[Generation | None]] = [[None] * n for _ in prompts]
        context = self.context_length
        too_long = {i for i, ids in enumerate(encoded) if context is not None and len(ids) >= context}
        for i in too_long:  # no room to generate: cut off at once, as a length stop (counted by every caller); the
            results[i] = [Generation("", 0, 0, "length") for _ in range(n)]  # prompt never ran: no tokens charged
        if too_long:
            log.warning("%d prompts fill the model's context of %d tokens: cut off without generating", len(too_long),
                        context)  # fmt: skip
        rows = [(i, j) for i in range(len(prompts)) if i not in too_long for j in range(n)]
        rows.sort(key=lambda r: len(encoded[r[0]]))  # similar lengths share a batch: less padding
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            ids, row_seeds = [encoded[i] for i, _ in batch], [row_seed(seeds[i], j) for i, j in batch]
            outs = self._generate_batch(ids, row_seeds, params, [starts[i] for i, _ in batch])
            for (i, j), gen in zip(batch, outs, strict=True):
                results[i][j] = gen
        return results  # type: ignore[return-value]

    def _generate_batch(
        self, ids: list[list[int]], seeds: list[int], params: SamplingParams, starts: list[Start]
    ) -> list[Generation]:
        """One batch, left-padded; a row that starts from a cached prefix has its state in the cache and only
        its other tokens in the input, after padding: [pad, cached | pad, uncached, generated...]."""
        pad = self.tokenizer.pad_token_id
        reused = [r for _, r in starts]
        held, fresh = max(reused), max(len(x) - r for x, r in zip(ids, reused, strict=True))
        width = held + fresh
        layout = [(held - r, r, fresh - len(x) + r, len(x) - r) for x, r in zip(ids, reused, strict=True)]
        input_ids = [[pad] * a + x[:r] + [pad] * b + x[r:] for x, (a, r, b, _) in zip(ids, layout, strict=True)]
        attention = [[0] * a + [1] * r + [0] * b + [1] * u for a, r, b, u in layout]
        past = batch_cache([s for s, _ in starts], reused)
        separator = self.format.step_separator if params.stop_at == "step" else None
        context = self.context_length
        ends = None if context is None else [width + context - len(x) for x in ids]
        recorder = StopRecorder(width, len(ids), self.eos_ids, self.step_end_ids, separator, self.tokenizer, ends)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,  # sampling happens inside SeededSampler
            eos_token_id=self.eos_ids,
            pad_token_id=pad,
            return_dict_in_generate=True,
        )
        out = self.model.generate(
            input_ids=torch.tensor(input_ids, device=self.model.device),
            attention_mask=torch.tensor(attention, device=self.model.device),
            generation_config=config,
            logits_processor=LogitsProcessorList([SeededSampler(seeds, params, self.banned_ids)]),
            stopping_criteria=StoppingCriteriaList([recorder]),
            **({"cache": past} if past is not None else {}),
        )
        generations = []
        for row, prompt in enumerate(ids):
            end = int(recorder.finished_at[row]) if recorder.finished_at[row] >= 0 else out.sequences.shape[1]
            new = out.sequences[row, width:end].tolist()
            if self.prefix_cache is not None:
                self._hold(out.cache, row, prompt + new, layout[row], end)
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            reason = "length"
            if new and new[-1] in self.eos_ids:
                reason = "eos"
            elif separator and separator in text:
                text, reason = text[: text.index(separator) + len(separator)], "step"
            generations.append(Generation(text, len(prompt), len(new), reason, reused[row]))
        return generations

    def _hold(self, cache: DynamicCache, row: int, ids: list[int], layout: tuple[int, int, int, int], end: int) -> None:
        """Cache a row's state: its tokens (cached prefix, rest of the prompt, generated) up to `end`, less
        the last one where the model never read it."""
        a, r, b, _ = layout
        end = min(end, cache.get_seq_length())
        columns = torch.cat([torch.arange(a, a + r), torch.arange(a + r + b, end)])
        self.prefix_cache.add(ids, row_state(cache, row, columns))


def end_ids(tokenizer, generation_eos: int | Sequence[int] | None) -> list[int]:
    """The ids that end a solution: the tokenizer's EOS and the generation config's (one id or several)."""
    extra = list(generation_eos) if isinstance(generation_eos, list | tuple) else [generation_eos]
    return sorted({tokenizer.eos_token_id, *extra} - {None})


def banned_ids(tokenizer, eos_ids: Sequence[int]) -> list[int]:
    """Special tokens other than EOS: never sampled."""
    return sorted(set(tokenizer.all_special_ids) - set(eos_ids))
