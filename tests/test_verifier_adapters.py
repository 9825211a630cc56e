"""Public PRM shapes in the runtime: tiny random models of each (TRL token classification, Math-Shepherd and
RLHFlow causal LMs, Qwen2.5-Math-PRM), built locally with SmolLM2's real BPE tokenizer. Each adapter's
step scores are compared with what that PRM's own published usage code reads, token for token."""

import json
import re

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    Qwen2Config,
    Qwen2ForTokenClassification,
    pipeline,
)

from bench import tokenizer_check
from core.checkpoints import REWARD_MODEL_KEY, STEP_FORMAT_KEY
from core.config import UserError, parse_config
from search import runs
from search.step_format import ARITH, GSM8K
from search.verifiers import qwen_prm
from search.verifiers.adapters import token_id
from search.verifiers.layouts import TagLayout, Templates
from search.verifiers.qwen_prm import QwenMathPRM
from search.verifiers.settings import VerifierSettings
from search.verifiers.verifier import PRMVerifier, load_verifier
from tests.conftest import ROOT, TINY
from tests.test_subword import GSM8K_SAMPLE, write_questions
from training import export_prm

QUESTION = "Janet has 16 eggs and eats 3. How many are left?"
STEPS = ["She has 16 - 3 = 13 eggs left.", "She sells them for $2 each: 13 * 2 = 26.", "The answer is: 26"]
QWEN_AUTO_MAP = {"AutoConfig": "configuration_qwen2_rm.Qwen2RMConfig",
                 "AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"}  # fmt: skip
KINDS = {  # tiny checkpoint -> the keys that read it
    "trl": {},  # two labels: its config tells
    "shepherd": {"verifier_kind": "causal_lm"},
    "rlhflow": {"verifier_kind": "causal_lm", "verifier_chat_template": True},
    "qwen": {},  # Qwen2ForProcessRewardModel: its config tells
}


def sizes(tokenizer, **extra) -> dict:
    return dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **extra)  # fmt: skip


def save(model, tokenizer, out):
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def as_qwen_prm(folder):
    """Make a saved checkpoint's config read like the public one's (its own class name, remote code declared)."""
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["Qwen2ForProcessRewardModel"], auto_map=QWEN_AUTO_MAP)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def public(bpe, tmp_path_factory):
    """One tiny random checkpoint of each public shape."""
    root, out = tmp_path_factory.mktemp("public_prms"), {}
    bpe.save_pretrained(root / "bpe")
    torch.manual_seed(0)
    out["trl"] = save(LlamaForTokenClassification(LlamaConfig(**sizes(bpe), num_labels=2)), bpe, root / "trl")
    shepherd = AutoTokenizer.from_pretrained(root / "bpe")
    shepherd.add_tokens(["ки"])  # Mistral's vocabulary has the tag; SmolLM2's splits it in two
    out["shepherd"] = save(LlamaForCausalLM(LlamaConfig(**sizes(shepherd))), shepherd, root / "shepherd")
    out["rlhflow"] = save(LlamaForCausalLM(LlamaConfig(**sizes(bpe))), bpe, root / "rlhflow")
    qwen = AutoTokenizer.from_pretrained(root / "bpe")
    qwen.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    out["qwen"] = as_qwen_prm(save(QwenMathPRM(Qwen2Config(**sizes(qwen))), qwen, root / "qwen"))
    return out


def verifier(public, name, fmt=GSM8K, **keys):
    return load_verifier(public[name], fmt, device="cpu", settings=VerifierSettings(**{**KINDS[name], **keys}))


# ---- each shape read where its own usage code reads it ---------------------------------------------------------


def test_trl_reads_label_one_at_the_separators_last_token_tokenized_as_trl_does(public):
    v = verifier(public, "trl", verifier_kind="trl", verifier_step_tag="\n\n")
    tok = AutoTokenizer.from_pretrained(public["trl"])
    # TRL's PRMTrainer.tokenize_row: [BOS] + prompt + (step + separator)..., each piece tokenized on its own
    pieces = [tok(QUESTION, add_special_tokens=False)["input_ids"]]
    sep = tok.encode("\n\n", add_special_tokens=False)
    assert len(sep) == 1 and sep[0] not in tok("a.\n\nb", add_special_tokens=False)["input_ids"]  # joint: 2 tokens
    ids, ends = [tok.bos_token_id, *pieces[0]], []
    for step in STEPS:
        ids += tok(step, add_special_tokens=False)["input_ids"] + sep
        ends.append(len(ids) - 1)
    model = AutoModelForTokenClassification.from_pretrained(public["trl"]).eval()
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits.softmax(-1)[0, ends, 1].tolist()
    assert v.score([GSM8K.prompt(QUESTION)], [STEPS])[0] == pytest.approx(expected, abs=1e-5)
    assert v.render([GSM8K.prompt(QUESTION)], [STEPS])[0].ids == ids  # the policy's prompt re-rendered, raw


def test_math_shepherd_reads_plus_against_minus_at_each_tag(public):
    v = verifier(public, "shepherd")
    tok = AutoTokenizer.from_pretrained(public["shepherd"])
    # math-shepherd-mistral-7b-prm's model card, step by step
    good, bad, tag = "+", "-", "ки"
    candidates = [tok.encode(good, add_special_tokens=False)[-1], tok.encode(bad, add_special_tokens=False)[-1]]
    tag_id = tok.encode(tag, add_special_tokens=False)[-1]
    output = "\n".join(f"Step {n}: {step} {tag}" for n, step in enumerate(STEPS, 1))
    input_id = torch.tensor([tok.encode(f"{QUESTION} {output}")])
    model = AutoModelForCausalLM.from_pretrained(public["shepherd"]).eval()
    with torch.no_grad():
        scores = model(input_id).logits[:, :, candidates].softmax(dim=-1)[:, :, 0]
    expected = scores[input_id == tag_id].tolist()
    assert len(expected) == len(STEPS)
    assert v.score([GSM8K.prompt(QUESTION)], [STEPS])[0] == pytest.approx(expected, abs=1e-5)


def test_rlhflow_reads_plus_where_the_assistant_answers_each_step(public):
    v = verifier(public, "rlhflow")
    tok = AutoTokenizer.from_pretrained(public["rlhflow"])
    plus, minus = tok.encode("+", add_special_tokens=False)[-1], tok.encode("-", add_special_tokens=False)[-1]
    model = AutoModelForCausalLM.from_pretrained(public["rlhflow"]).eval()
    # RLHFlow's evaluation loop: the conversation so far, P(+) vs P(-) where the last "+" is predicted
    conversation, expected = [], []
    for k, step in enumerate(STEPS):
        text = f"{QUESTION} Step 1: {step}" if k == 0 else f"Step {k + 1}: {step}"
        conversation += [{"content": text, "role": "user"}, {"content": "+", "role": "assistant"}]
        ids = tok(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False)["input_ids"]
        at = len(ids) - 1 - ids[::-1].index(plus)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, at - 1, [plus, minus]]
        expected.append(logits.softmax(-1)[0].item())
    assert v.score([GSM8K.prompt(QUESTION)], [STEPS])[0] == pytest.approx(expected, abs=1e-5)


def test_qwen_prm_reads_class_one_at_each_extra_0_without_remote_code(public):
    v = verifier(public, "qwen")
    assert isinstance(v.model, QwenMathPRM)
    tok = AutoTokenizer.from_pretrained(public["qwen"])
    # Qwen2.5-Math-PRM-7B's model card: make_step_rewards over the <extra_0> mask
    system = "Please reason step by step, and put your final answer within \\boxed{}."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "<extra_0>".join(STEPS) + "<extra_0>"}]  # fmt: skip
    input_ids = tok.encode(tok.apply_chat_template(messages, tokenize=False), return_tensors="pt")
    with torch.no_grad():
        probabilities = QwenMathPRM.from_pretrained(public["qwen"]).eval()(input_ids=input_ids)[0].softmax(dim=-1)
    mask = input_ids == tok.encode("<extra_0>")[0]
    expected = probabilities[mask].view(-1, 2)[:, 1].tolist()
    assert v.score([GSM8K.prompt(QUESTION)], [STEPS])[0] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", KINDS)
def test_a_steps_score_does_not_depend_on_later_steps_and_batches_change_nothing(public, name):
    v = verifier(public, name)
    prompts, solutions = [GSM8K.prompt(QUESTION), GSM8K.prompt("What is 2 + 2?")], [STEPS, ["2 + 2 = 4"]]
    full = v.score(prompts, solutions)
    assert full[1] == pytest.approx(v.score(prompts[1:], solutions[1:])[0], abs=1e-5)
    prefixes = [v.score([prompts[0]], [STEPS[: i + 1]])[0][-1] for i in range(len(STEPS))]
    assert full[0] == pytest.approx(prefixes, abs=1e-5) and all(0 < x < 1 for x in full[0])
    assert v.count_tokens(prompts, solutions) == [len(r.ids) for r in v.render(prompts, solutions)]


# ---- the runtime --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KINDS)
def test_runtime_runs_best_of_n_and_beam_search_with_each_kind(public, subword_policy, tmp_path, name):
    questions = write_questions(tmp_path / "q.jsonl", load_questions_sample()[:2])
    out = runs.run_config(runs.RunConfig(
        policy=str(subword_policy), verifier=str(public[name]), step_format="gsm8k", dataset=str(questions),
        strategies="best_of_n,beam:m=2", budgets="2", max_new_tokens=12, max_step_tokens=6, max_rounds=2,
        output_dir=str(tmp_path / "search"), **KINDS[name],
    ))  # fmt: skip
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["strategy"] for r in rows) == ["beam:m=2"] * 2 + ["best_of_n:select=weighted"] * 2
    assert all(r["accounting"]["verifier_tokens"] > 0 for r in rows)
    assert all(0 <= c["score"] <= 1 for r in rows for c in r["candidates"])
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert {k: settings[k] for k in KINDS[name]} == KINDS[name]  # what read the verifier is the run's identity


def load_questions_sample():
    from data.tasks import load_task

    return load_task("gsm8k", str(GSM8K_SAMPLE)).questions("test")


# ---- bad input: one line, naming the checkpoint and the fix -----------------------------------------------------


def test_a_checkpoint_of_unknown_kind_is_refused_with_the_fix(public):
    with pytest.raises(UserError, match=r"rlhflow: not a reward model .* set verifier_kind to one of trl, causal_lm"):
        load_verifier(public["rlhflow"], GSM8K, device="cpu")


def test_a_tag_that_is_not_one_token_is_refused_at_load(public):
    with pytest.raises(UserError, match=r"rlhflow: the step tag ' ки' is not one token of the verifier's tokenizer"):
        load_verifier(public["rlhflow"], GSM8K, device="cpu", settings=VerifierSettings(verifier_kind="causal_lm"))


def test_a_solution_longer_than_the_verifiers_context_is_an_error(bpe, tmp_path):
    short = save(LlamaForTokenClassification(LlamaConfig(**{**sizes(bpe), "max_position_embeddings": 24},
                                                         num_labels=2)), bpe, tmp_path / "short")  # fmt: skip
    v = load_verifier(short, GSM8K, device="cpu")
    with pytest.raises(UserError, match=r"short: a solution of \d+ tokens is longer than its context of 24: lower"):
        v.score([GSM8K.prompt(QUESTION)], [STEPS])


def test_qwen_weights_of_another_layout_name_the_opt_in_and_the_opt_in_runs_their_code(public, tmp_path, monkeypatch):
    tok = AutoTokenizer.from_pretrained(public["qwen"])
    other = as_qwen_prm(save(Qwen2ForTokenClassification(Qwen2Config(**sizes(tok), num_labels=2)), tok,
                             tmp_path / "other"))  # fmt: skip
    with pytest.raises(UserError, match=r"other: its weights do not fit .* set trust_remote_code: true"):
        load_verifier(other, GSM8K, device="cpu")
    calls = []

    def remote(path, **kwargs):  # stands for the checkpoint's own modeling file
        calls.append(kwargs)
        return QwenMathPRM.from_pretrained(path)

    monkeypatch.setattr(qwen_prm.AutoModel, "from_pretrained", remote)
    v = load_verifier(public["qwen"], GSM8K, device="cpu", settings=VerifierSettings(trust_remote_code=True))
    assert calls == [{"trust_remote_code": True}]
    expected = verifier(public, "qwen").score([GSM8K.prompt(QUESTION)], [STEPS])[0]
    assert v.score([GSM8K.prompt(QUESTION)], [STEPS])[0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"verifier_kind": "shepherd"}, "verifier_kind must be one of native, trl, causal_lm, qwen_prm"),
        ({"verifier_step_tag": "ки"}, "verifier_step_tag need verifier_kind trl or causal_lm or qwen_prm"),
        ({"verifier_kind": "trl", "verifier_good_token": "+"}, "verifier_good_token do not apply to verifier_kind trl"),
        ({"verifier_kind": "causal_lm", "verifier_chat_template": True, "verifier_step_tag": "ки"},
         "verifier_step_tag do not apply"),
        ({"verifier_kind": "causal_lm", "verifier_good_token": "-"}, "two different, non-empty tokens"),
        ({"verifier_kind": "trl", "verifier_step_template": "Step {n}"}, "must contain '{step}' once"),
        ({"verifier_kind": "trl", "trust_remote_code": True}, "trust_remote_code applies to verifier_kind qwen_prm"),
    ],
)  # fmt: skip
def test_bad_verifier_keys_are_refused_before_any_model_loads(keys, match, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items()))
    with pytest.raises(UserError, match=re.escape(match)):
        parse_config([runs.RunConfig], ["--config", str(recipe), "--verifier", "/nonexistent"])


# ---- our PRMs in the ecosystem's tools ---------------------------------------------------------------------------


@pytest.fixture
def native_prm(tokenizer, tmp_path):
    """A one-logit PRM checkpoint of this project (random weights, char tokenizer, arith format)."""
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=TINY.hidden_size, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_labels=1,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)  # fmt: skip
    setattr(config, STEP_FORMAT_KEY, ARITH.to_dict())
    setattr(config, REWARD_MODEL_KEY, {"kind": "prm", "head": "linear", "label_kind": "soft", "aggregation": "last"})
    torch.manual_seed(1)
    return save(LlamaForTokenClassification(config), tokenizer, tmp_path / "prm")


def test_the_two_label_export_gives_the_pipeline_and_the_runtime_our_scores(native_prm, tmp_path):
    prompt, steps = ARITH.prompt("(2+7)*3"), ["2+7=9", "9*3=27", "A:27"]
    ours = load_verifier(native_prm, ARITH, device="cpu")
    assert isinstance(ours, PRMVerifier)
    expected = ours.score([prompt], [steps])[0]
    export = export_prm.main(["--checkpoint", str(native_prm), "--output_dir", str(tmp_path / "two")])
    assert load_verifier(export, ARITH, device="cpu").score([prompt], [steps])[0] == pytest.approx(expected, abs=1e-6)

    tokens = pipeline("token-classification", model=str(export), device="cpu")(prompt + ARITH.render_steps(steps))
    ends = [len(prompt + ARITH.render_steps(steps[: i + 1])) for i in range(len(steps))]
    at_ends = [t for t in tokens if t["end"] in ends]  # the separator after each step
    read = [t["score"] if t["entity"] == "LABEL_1" else 1 - t["score"] for t in at_ends]
    assert read == pytest.approx(expected, abs=1e-5)
    readme = (export / "README.md").read_text()
    assert "LABEL_1" in readme and readme.startswith("---\n")

    original = pipeline("token-classification", model=str(native_prm), device="cpu")(prompt)
    assert {t["score"] for t in original} == {1.0}  # why the export exists: a softmax over one logit


def test_docs_recipe_lines_parse(capsys, tmp_path):
    """Every YAML block of docs/verifiers.md is a valid set of runtime keys."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs/verifiers.md").read_text(), re.S)
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        recipe = tmp_path / f"{i}.yaml"
        recipe.write_text(block)
        with pytest.raises(SystemExit) as exit_info:
            parse_config([runs.RunConfig], ["--config", str(recipe), "--dry-run"])
        assert exit_info.value.code == 0, block
    capsys.readouterr()


def qwen_prm_weights(vocab: int, hidden: int = 32, inner: int = 64, layers: int = 2, heads: int = 2, kv: int = 1):
    """Qwen2.5-Math-PRM's tensors under the public checkpoints' names (Qwen2Model under `model.`, the head as
    `score.0` / `score.2` of a Sequential(Linear, ReLU, Linear)), plus an `lm_head.weight` shipped beside them."""
    head_dim, g = hidden // heads, torch.Generator().manual_seed(0)
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,),
              "score.0.weight": (hidden, hidden), "score.0.bias": (hidden,), "score.2.weight": (2, hidden),
              "score.2.bias": (2,), "lm_head.weight": (vocab, hidden)}  # fmt: skip
    q, k = heads * head_dim, kv * head_dim
    per_layer = {"self_attn.q_proj.weight": (q, hidden), "self_attn.q_proj.bias": (q,),
                 "self_attn.k_proj.weight": (k, hidden), "self_attn.k_proj.bias": (k,),
                 "self_attn.v_proj.weight": (k, hidden), "self_attn.v_proj.bias": (k,),
                 "self_attn.o_proj.weight": (hidden, q), "mlp.gate_proj.weight": (inner, hidden),
                 "mlp.up_proj.weight": (inner, hidden), "mlp.down_proj.weight": (hidden, inner),
                 "input_layernorm.weight": (hidden,), "post_attention_layernorm.weight": (hidden,)}  # fmt: skip
    for i in range(layers):
        shapes |= {f"model.layers.{i}.{name}": shape for name, shape in per_layer.items()}
    return {name: torch.randn(shape, generator=g) * 0.1 for name, shape in shapes.items()}


def test_a_qwen_prm_written_under_the_public_weight_names_loads_every_weight_and_ignores_lm_head(bpe, tmp_path):
    """Not saved from our class: a raw safetensors file of the public names, and a hand-written config."""
    from safetensors.torch import save_file

    tok = AutoTokenizer.from_pretrained(save(LlamaForCausalLM(LlamaConfig(**sizes(bpe))), bpe, tmp_path / "bpe"))
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    folder = tmp_path / "qwen_raw"
    tok.save_pretrained(folder)
    weights = qwen_prm_weights(len(tok))
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForProcessRewardModel"], "auto_map": QWEN_AUTO_MAP, "model_type": "qwen2",
        "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}))  # fmt: skip
    model = qwen_prm.load_qwen_prm(str(folder))
    state = model.state_dict()
    assert set(state) == set(weights) - {"lm_head.weight"}
    assert all(torch.equal(state[name], weights[name]) for name in state)  # nothing left random
    v = load_verifier(folder, GSM8K, device="cpu")
    assert all(0 < x < 1 for x in v.score([GSM8K.prompt(QUESTION)], [STEPS])[0])
    weights["score.2.b"] = weights.pop("score.2.bias")  # a head of another layout: named, not loaded at random
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"qwen_raw: its weights do not fit .*score\.2\.b"):
        qwen_prm.load_qwen_prm(str(folder))


def test_the_real_mistral_tokenizer_gives_math_shepherds_ids_and_the_tag_layout_reads_each_tag(mistral):
    # math-shepherd-mistral-7b-prm's model card: encode("+ -")[1:] -> [648, 387], encode("ки")[-1] -> 12902
    assert mistral.encode("+ -")[1:] == [648, 387] and mistral.encode("ки")[-1] == 12902
    assert [token_id(mistral, t, "good/bad token", "mistral") for t in ("+", "-")] == [648, 387]  # the adapter's
    values = VerifierSettings(verifier_kind="causal_lm").resolved("causal_lm")
    layout = TagLayout(Templates(values["prompt_template"], values["step_template"]), values["step_tag"],
                       values["step_join"])  # fmt: skip
    rendered = layout.render(mistral, QUESTION, STEPS)
    card_text = f"{QUESTION} " + "\n".join(f"Step {n}: {step} ки" for n, step in enumerate(STEPS, 1))
    assert rendered.ids == mistral.encode(card_text)  # the card's own text, tokenized as it does
    assert [rendered.ids[r] for r in rendered.reads] == [12902] * len(STEPS)


def test_the_hub_tokenizer_check_runs_on_local_stand_ins(public, capsys):
    """bench/tokenizer_check.py is for a machine with a Hub; here its checks run on the tiny stand-ins."""
    results = tokenizer_check.main(["--shepherd", str(public["shepherd"]), "--rlhflow", str(public["rlhflow"]),
                                    "--qwen", str(public["qwen"])])  # fmt: skip
    assert results.pop("shepherd: card's ids [648, 387], 12902") is False  # SmolLM2's ids, not Mistral's
    assert all(results.values()) and len(results) == 6
    assert "'<extra_0>' ->" in capsys.readouterr().out
