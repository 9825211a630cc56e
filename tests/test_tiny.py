import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import TINY
from training.tiny import build_tiny_model


def test_tokenizer_keeps_every_character(tokenizer):
    text = "Q:((2+7)*3)-5\n2+7=9\n  spaced  out\tA:22\n"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and len(ids) == len(text) + 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_save_load_round_trip(tmp_path, tokenizer):
    model = build_tiny_model(TINY, tokenizer, seed=3)
    tokenizer.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()

    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path)
    text = "Q:(4*5)-3\n4*5=20\n"
    assert tok2(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert (tok2.pad_token_id, tok2.bos_token_id, tok2.eos_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).logits, model2.eval()(ids).logits)
