"""The public PRMs' real tokenizers against the adapters' layouts, by Hub id: for a machine with a Hub.

    python -m bench.tokenizer_check                      # prints the ids and one line per check
    python -m bench.tokenizer_check --qwen /path/to/Qwen2.5-Math-PRM-7B   # a local copy instead

Only the tokenizers are loaded (no weights). `make test` checks Math-Shepherd's Mistral tokenizer
offline (the mistral-common wheel ships it); no package ships Llama-3.1's chat template nor
Qwen2.5-Math-PRM's `<extra_0>`, so those are checked here, each against its model card's own code:

- math-shepherd: the ids the card prints (`encode("+ -")[1:]` = [648, 387], `encode("ки")[-1]` =
  12902), and the tag layout's ids and read positions equal the card's text and its ки positions;
- RLHFlow: the turn layout renders the Llama-3.1 chat template turn by turn, and reads each step just
  before the "+" the card's step-by-step loop finds (the last "+" of the conversation so far);
- Qwen2.5-Math-PRM: the chat layout's ids equal the card's and its reads are the `<extra_0>` positions
  (`make_step_rewards`' mask).

Exits with 1 when a check fails.
"""

from __future__ import annotations

import argparse

from transformers import AutoTokenizer

from search.verifiers.layouts import TagLayout, Templates, TurnLayout
from search.verifiers.settings import QWEN_SYSTEM_PROMPT, VerifierSettings

HUB = {"shepherd": "peiyi9979/math-shepherd-mistral-7b-prm", "rlhflow": "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data",
       "qwen": "Qwen/Qwen2.5-Math-PRM-7B"}  # fmt: skip
QUESTION = "Janet has 16 eggs and eats 3. How many are left?"
STEPS = ["She has 16 - 3 = 13 eggs left.", "She sells them for $2 each: 13 * 2 = 26.", "The answer is: 26"]


def layout_of(kind: str, **keys) -> tuple[Templates, dict]:
    values = VerifierSettings(verifier_kind=kind, **keys).resolved(kind)
    return Templates(values["prompt_template"], values["step_template"]), values


def check_shepherd(tok) -> dict[str, bool]:
    text, values = layout_of("causal_lm")
    rendered = TagLayout(text, values["step_tag"], values["step_join"]).render(tok, QUESTION, STEPS)
    card = tok.encode(f"{QUESTION} " + "\n".join(f"Step {n}: {s} ки" for n, s in enumerate(STEPS, 1)))
    tag = tok.encode("ки")[-1]
    print(f"  '+ -' -> {tok.encode('+ -')[1:]}, 'ки' -> {tag}")
    return {"card's ids [648, 387], 12902": tok.encode("+ -")[1:] == [648, 387] and tag == 12902,
            "ids as the card's": rendered.ids == card,
            "reads at each ки": rendered.reads == [i for i, t in enumerate(card) if t == tag]}  # fmt: skip


def check_rlhflow(tok) -> dict[str, bool]:
    text, values = layout_of("causal_lm", verifier_chat_template=True)
    rendered = TurnLayout(text, values["good_token"]).render(tok, QUESTION, STEPS)
    plus = tok.encode("+", add_special_tokens=False)[-1]
    print(f"  '+' -> {plus}, '-' -> {tok.encode('-', add_special_tokens=False)[-1]}")
    conversation, reads, prefixes = [], [], True
    for n, step in enumerate(STEPS, 1):  # the card's loop: the conversation so far, P(+) before its last "+"
        conversation += [{"role": "user", "content": text.prompt(QUESTION) * (n == 1) + text.step(n, step)},
                         {"role": "assistant", "content": "+"}]  # fmt: skip
        ids = tok(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False)["input_ids"]
        at = len(ids) - 1 - ids[::-1].index(plus)
        reads.append(at - 1)
        prefixes &= rendered.ids[: at + 1] == ids[: at + 1]
    return {"each turn a prefix of the whole": prefixes, "reads before each '+'": rendered.reads == reads}


def check_qwen(tok) -> dict[str, bool]:
    text, values = layout_of("qwen_prm")
    layout = TagLayout(text, values["step_tag"], values["step_join"], True, values["system_prompt"])
    rendered = layout.render(tok, QUESTION, STEPS)
    messages = [{"role": "system", "content": QWEN_SYSTEM_PROMPT}, {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "<extra_0>".join(STEPS) + "<extra_0>"}]  # fmt: skip
    card = tok.encode(tok.apply_chat_template(messages, tokenize=False))
    tag = tok.encode("<extra_0>")[0]
    print(f"  '<extra_0>' -> {tag}")
    return {"ids as the card's": rendered.ids == card,
            "reads at each <extra_0>": rendered.reads == [i for i, t in enumerate(card) if t == tag]}  # fmt: skip


CHECKS = {"shepherd": check_shepherd, "rlhflow": check_rlhflow, "qwen": check_qwen}


def main(argv: list[str] | None = None) -> dict[str, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, hub_id in HUB.items():
        parser.add_argument(f"--{name}", default=hub_id, help=f"tokenizer to check (default {hub_id})")
    args = parser.parse_args(argv)
    results = {}
    for name, check in CHECKS.items():
        source = getattr(args, name)
        print(f"{name}: {source}")
        for what, ok in check(AutoTokenizer.from_pretrained(source)).items():
            print(f"  {'ok  ' if ok else 'FAIL'} {what}")
            results[f"{name}: {what}"] = ok
    return results


if __name__ == "__main__":
    raise SystemExit(0 if all(main().values()) else 1)
