"""Batched passes of a transformers model that start from cached prefixes (`search.generation.prefix_cache`).

`batch_cache` lays the held states of a batch's rows into one transformers cache (left-padded with
zeros, masked out), `row_state` takes one row's state back out, and `token_values` is the verifiers'
pass: one value per token of each sequence (a PRM's step score, a token's log-likelihood), computing
only what no cached prefix holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import DynamicCache

from search.generation.prefix_cache import PrefixCache, SequenceState

# read(logits [batch, width, vocab or labels], ids [batch, width]) -> values [batch, width]
Read = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batch_cache(states: Sequence[SequenceState | None], lengths: Sequence[int]) -> DynamicCache | None:
    """One cache of the first lengths[i] tokens of states[i] per row, left-padded to the longest; None if
    no row reads any."""
    width = max(lengths, default=0)
    if not width:
        return None
    some = next(s for s, n in zip(states, lengths, strict=True) if n)
    shape = some.keys[0].shape  # [heads, length, head_dim]
    zeros = some.keys[0].new_zeros((shape[0], width, shape[2]))

    def layer(tensors: Callable[[SequenceState], tuple[torch.Tensor, ...]], index: int) -> torch.Tensor:
        rows = [
            torch.cat([zeros[:, : width - n], tensors(s)[index][:, :n]], dim=1) if n else zeros
            for s, n in zip(states, lengths, strict=True)
        ]
        return torch.stack(rows)

    return DynamicCache([(layer(lambda s: s.keys, i), layer(lambda s: s.values, i)) for i in range(len(some.keys))])


def row_state(
    cache: DynamicCache, row: int, columns: torch.Tensor, outputs: torch.Tensor | None = None
) -> SequenceState:
    """Row `row` of a batch cache at `columns` (its own tokens, in order), copied out of the batch."""
    columns = columns.to(cache.layers[0].keys.device)
    keys = tuple(layer.keys[row].index_select(1, columns) for layer in cache.layers)
    values = tuple(layer.values[row].index_select(1, columns) for layer in cache.layers)
    return SequenceState(keys, values, outputs)


@torch.inference_mode()
def token_values(
    model,
    sequences: Sequence[list[int]],
    pad_id: int,
    batch_size: int,
    read: Read,
    lookback: int = 0,
    cache: PrefixCache | None = None,
) -> list[torch.Tensor]:
    """Per sequence, a value per token from one forward pass in right-padded batches: token j's value is
    `read(logits at token j - lookback, id of token j)` (0 for the first `lookback` tokens), so it
    depends on tokens 0..j only. With a cache, each sequence starts from its longest cached prefix (its
    states and values are read, the rest computed), its own state is cached, and `cache.reused` says how
    many tokens each read from the cache."""
    starts = [cache.start(ids, lookback) if cache is not None else (None, 0) for ids in sequences]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]) - starts[i][1])  # less padding
    out: list[torch.Tensor] = [torch.empty(0)] * len(sequences)
    for begin in range(0, len(order), batch_size):
        batch = order[begin : begin + batch_size]
        reused = [starts[i][1] for i in batch]
        new = [sequences[i][r:] for i, r in zip(batch, reused, strict=True)]
        width, held = max(len(x) for x in new), max(reused)
        ids = torch.tensor([x + [pad_id] * (width - len(x)) for x in new])
        mask = torch.tensor(
            [[0] * (held - r) + [1] * (r + len(x)) + [0] * (width - len(x)) for r, x in zip(reused, new, strict=True)]
        )
        past, extra = None, {}
        if cache is not None:  # positions go on from each row's cached prefix
            past = batch_cache([starts[i][0] for i in batch], reused)
            past = past if past is not None else DynamicCache()
            positions = torch.tensor([[r + j for j in range(width)] for r in reused])
            extra = {"cache": past, "use_cache": True, "position_ids": positions.to(model.device)}
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **extra).logits
        values = torch.zeros(ids.shape)
        values[:, lookback:] = read(logits[:, : width - lookback], ids[:, lookback:].to(logits.device)).float().cpu()
        for row, i in enumerate(batch):
            state, r, n = starts[i][0], reused[row], len(sequences[i])
            head = state.outputs[: r + lookback] if state is not None else torch.zeros(lookback)
            out[i] = torch.cat([head, values[row, lookback : n - r]])
            if cache is not None:
                cache.add(sequences[i], row_state(past, row, torch.arange(held - r, held + n - r), out[i]))
    if cache is not None:
        cache.reused = [r for _, r in starts]
    return out
