"""Tiny models for the embedded task: a char-level tokenizer and a Llama-style causal LM.

Both save as a standard Hugging Face folder that `AutoTokenizer` / `AutoModelForCausalLM`
load back. A Llama config is used on purpose: with a Qwen2 config `AutoTokenizer` swaps
the char tokenizer for Qwen2's and drops spaces.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
CHARS = "\n\t" + "".join(c for c in string.printable if c.isprintable())  # printable ASCII, newline, tab


def build_char_tokenizer(max_length: int = 512) -> PreTrainedTokenizerFast:
    """One token per character; prepends BOS; decoding joins characters back exactly."""
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *CHARS])}
    # BPE with no merges is a pure character tokenizer that keeps every whitespace.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


@dataclass
class TinyModelConfig:
    """Size of a Llama-style model built from scratch."""

    hidden_size: int = 128  # width of the model built from scratch
    num_hidden_layers: int = 4  # transformer layers
    num_attention_heads: int = 4  # attention heads per layer
    intermediate_size: int = 512  # MLP width
    max_position_embeddings: int = 256  # the context length

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_attention_heads "
                             f"{self.num_attention_heads}")  # fmt: skip


def build_tiny_model(size: TinyModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    """A randomly initialised Llama causal LM matching the tokenizer's special tokens."""
    import torch

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_attention_heads,
        max_position_embeddings=size.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)
