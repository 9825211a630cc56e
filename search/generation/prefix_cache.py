"""Prefix reuse for step-level search: the key/value states of token sequences a model has already read.

Beam search, lookahead and DVTS extend the same prefixes round after round. A `PrefixCache` holds the
per-layer key/value states of sequences (one row each, no padding) in a trie of their token ids, so a
new sequence finds the longest prefix whose states are held, also when it shares only part of a held
sequence: a sub-word tokenizer can merge tokens across a step boundary, so the token ids decide what is
reusable, never the text. A token's state depends only on the tokens up to it, so reusing the states of
a common prefix gives what a full pass gives (to float rounding).

A cache holds only what its owner last said to keep (`retain`): the live beams' prefixes, each cut to
what a live beam shares with it. Pruned beams' states are freed that way, and a search over many
questions holds only its live beams.

A backend that can reuse prefixes (the HF generator and verifiers) mixes in `ReusesPrefixes`: within
its `reuse_prefixes()` block its calls read and fill its cache, and the cache is dropped at the exit.
`prefix_reuse` enters the blocks of the components that have one; a component without one (another
backend, a scripted fake) works as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import torch


@dataclass(frozen=True)
class SequenceState:
    """What a model computed for one token sequence: per layer, keys and values [heads, length, head_dim];
    and, for a verifier, its per-token outputs [length] (token j's output depends on tokens 0..j only)."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    outputs: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.keys[0].shape[-2]

    def prefix(self, length: int) -> SequenceState:
        """The state of the first `length` tokens, copied so that the rest can be freed."""
        outputs = None if self.outputs is None else self.outputs[:length].clone()
        return SequenceState(
            tuple(k[:, :length].clone() for k in self.keys), tuple(v[:, :length].clone() for v in self.values), outputs
        )


Start = tuple[SequenceState | None, int]  # where a pass starts: a held state and how many of its tokens to read


class _Node:
    __slots__ = ("children", "state")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.state: SequenceState | None = None  # a held state that covers the path to this node


class PrefixCache:
    """States of token sequences, found by longest common prefix; see the module docstring."""

    def __init__(self, tokenize: Callable[[str], list[int]]):
        self.tokenize = tokenize  # text -> token ids, as the owner's model reads the text
        self.root = _Node()
        self.reused: list[int] = []  # per sequence of the owner's latest call: tokens read from the cache

    def find(self, ids: Sequence[int]) -> tuple[SequenceState | None, int]:
        """The held state sharing the longest prefix with `ids`, and the length of that prefix."""
        node, depth = self.root, 0
        for token in ids:
            child = node.children.get(token)
            if child is None:
                break
            node, depth = child, depth + 1
        return node.state, depth

    def start(self, ids: Sequence[int], lookback: int = 0) -> Start:
        """Where a pass over `ids` can start: a held state and how many of its tokens to read. That is the
        common prefix less `lookback` tokens (the first computed token's output reads the logits of the
        `lookback` tokens before it), and never all of `ids` (the last token's logits must be computed)."""
        state, depth = self.find(ids)
        reused = max(0, min(depth - lookback, len(ids) - 1))
        return (state, reused) if reused else (None, 0)

    def add(self, ids: Sequence[int], state: SequenceState) -> None:
        """Hold `state`, the state of the first len(state) tokens of `ids`."""
        _insert(self.root, ids[: len(state)], state)

    def retain(self, texts: Sequence[str]) -> None:
        """Keep, for each text, the held state of its longest cached prefix (cut to that prefix); free the rest."""
        root, cut = _Node(), {}
        for text in texts:
            ids = self.tokenize(text)
            state, depth = self.find(ids)
            if state is None or not depth:
                continue
            if depth < len(state):
                key = (id(state), depth)
                if key not in cut:
                    cut[key] = state.prefix(depth)
                state = cut[key]
            _insert(root, ids[:depth], state)
        self.root = root

    def __len__(self) -> int:
        """How many distinct states the cache holds."""
        held, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            held.add(id(node.state))
            stack += node.children.values()
        return len(held - {id(None)})


def _insert(root: _Node, ids: Sequence[int], state: SequenceState) -> None:
    node = root
    for token in ids:
        node = node.children.setdefault(token, _Node())
        node.state = state  # the newest state wins: every state on a path covers it


class ReusesPrefixes:
    """Prefix reuse for a backend with `model`, `tokenizer` and `format` (a `StepFormat`)."""

    prefix_cache: PrefixCache | None = None

    @contextmanager
    def reuse_prefixes(self) -> Iterator[PrefixCache | None]:
        """Within the block this backend's calls reuse and fill a prefix cache (None where its model's
        cache is not plain full attention: sliding-window layers keep only part of a sequence)."""
        layer_types = getattr(self.model.config, "layer_types", None) or ["full_attention"]
        if set(layer_types) != {"full_attention"}:
            yield None
            return
        outer, self.prefix_cache = self.prefix_cache, PrefixCache(partial(self.format.tokenize, self.tokenizer))
        try:
            yield self.prefix_cache
        finally:
            self.prefix_cache = outer


@dataclass
class PrefixReuse:
    """The prefix caches of a search: the policy's and the verifier's (None: that side reuses nothing)."""

    policy: PrefixCache | None = None  # the policy checkpoint: a local folder or a Hub id
    verifier: PrefixCache | None = None  # the PRM (or ORM) checkpoint that scores steps

    def keep(self, texts: Sequence[str]) -> None:
        """Keep the states of these texts' prefixes (the live beams, rendered) on both sides; free the rest."""
        for cache in (self.policy, self.verifier):
            if cache is not None:
                cache.retain(texts)

    def verifier_reused(self, count: int) -> list[int]:
        """Per sequence of the verifier's latest call (`count` of them), the tokens read from its cache."""
        return list(self.verifier.reused) if self.verifier is not None else [0] * count


@contextmanager
def prefix_reuse(generator: object, verifier: object, enabled: bool = True) -> Iterator[PrefixReuse]:
    """Turn prefix reuse on in the generator and the verifier where they support it (and `enabled`)."""
    with ExitStack() as stack:

        def enter(component: object) -> PrefixCache | None:
            scope = getattr(component, "reuse_prefixes", None) if enabled else None
            return stack.enter_context(scope()) if scope is not None else None

        yield PrefixReuse(enter(generator), enter(verifier))
