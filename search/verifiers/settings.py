"""Which kind of verifier a checkpoint is, and how a public PRM wants a solution written.

The runtime reads this project's own PRMs/ORMs (`native`) and three public shapes
(`search.verifiers.adapters`); these are the recipe/CLI keys that choose and tune them. Every
value is checked when the settings are made, before any model loads. `verifier_kind` unset, the
checkpoint's config tells the kind (`search.verifiers.adapters.detect_kind`); a rendering key needs
the kind set. A key left unset takes its kind's default (`DEFAULTS`): the format the public
checkpoints of that kind were trained on.

    trl        TRL's PRMTrainer: token classification, 2 labels; P(label 1) at the last token of
               the step separator (`verifier_step_tag`; unset, the `step_separator` the checkpoint's
               config declares, else "\\n" with a warning) after each step.
    causal_lm  Math-Shepherd: "{question} Step 1: ... ки\\nStep 2: ... ки", P(good) of the good/bad
               token pair at each tag; with `verifier_chat_template: true`, RLHFlow: each step is a
               user turn, the assistant answers the good token, P(good) where it would be written.
    qwen_prm   Qwen2.5-Math-PRM: a chat (system, user = question, assistant = the steps, each
               followed by `<extra_0>`), a two-class head read at each tag: P(class 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KINDS = ("native", "trl", "causal_lm", "qwen_prm")
ADAPTER_KINDS = KINDS[1:]
QWEN_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."

# per kind: the default of each rendering key (a key not listed does not apply to the kind)
DEFAULTS: dict[str, dict[str, str]] = {
    "trl": {"prompt_template": "{question}", "step_template": "{step}", "step_tag": "\n"},
    "causal_lm": {
        "prompt_template": "{question} ",
        "step_template": "Step {n}: {step}",
        "step_tag": " ки",
        "step_join": "\n",
        "good_token": "+",
        "bad_token": "-",
        "system_prompt": "",
    },
    "qwen_prm": {
        "prompt_template": "{question}",
        "step_template": "{step}",
        "step_tag": "<extra_0>",
        "step_join": "",
        "system_prompt": QWEN_SYSTEM_PROMPT,
    },
}
TAG_ONLY = ("step_tag", "step_join")  # causal_lm keys of the tag layout (Math-Shepherd), not of the chat one


@dataclass
class VerifierSettings:
    """The keys that choose and tune a verifier, mixed into the runtime's and the evaluators' configs."""

    verifier_kind: str | None = None  # native, trl, causal_lm or qwen_prm (docs/verifiers.md); default: its config
    verifier_prompt_template: str | None = None  # public verifiers: the text before the first step, with {question}
    verifier_step_template: str | None = None  # public verifiers: how a step is written, with {step} and optionally {n}
    verifier_step_tag: str | None = None  # where a public verifier's step score is read (docs/verifiers.md)
    verifier_step_join: str | None = None  # causal_lm, qwen_prm: the text between a step's tag and the next step
    verifier_good_token: str | None = None  # causal_lm: the 'step is right' token
    verifier_bad_token: str | None = None  # causal_lm: the 'step is wrong' token
    verifier_chat_template: bool = False  # causal_lm: RLHFlow's layout, steps as chat turns answered by the good token
    verifier_system_prompt: str | None = None  # qwen_prm (and causal_lm with a chat template): the system turn
    trust_remote_code: bool = False  # qwen_prm only: run the checkpoint's own code if the built-in architecture fails

    def __post_init__(self) -> None:
        kind = self.verifier_kind
        if kind is not None and kind not in KINDS:
            raise ValueError(f"verifier_kind must be one of {', '.join(KINDS)}, got {kind!r}")
        chosen = sorted(key for key, value in self.rendering().items() if value is not None)
        named = [f"verifier_{key}" for key in chosen]
        named += ["verifier_chat_template"] if self.verifier_chat_template else []
        if named and kind not in ADAPTER_KINDS:
            raise ValueError(f"{', '.join(named)} need verifier_kind {' or '.join(ADAPTER_KINDS)}")
        if self.trust_remote_code and kind not in (None, "qwen_prm"):
            raise ValueError("trust_remote_code applies to verifier_kind qwen_prm only")
        if kind in ADAPTER_KINDS:
            applies = set(DEFAULTS[kind])
            if kind == "causal_lm":  # RLHFlow's chat layout has turns, not tags; Math-Shepherd's has no system turn
                applies -= set(TAG_ONLY) if self.verifier_chat_template else {"system_prompt"}
            extra = [f"verifier_{key}" for key in chosen if key not in applies]
            extra += ["verifier_chat_template"] if self.verifier_chat_template and kind != "causal_lm" else []
            if extra:
                raise ValueError(f"{', '.join(extra)} do not apply to verifier_kind {kind}")
            self.check_templates(self.resolved(kind))

    def rendering(self) -> dict[str, str | None]:
        """The rendering keys as set (None: the kind's default), without the `verifier_` prefix."""
        prefix = "verifier_"
        skip = ("verifier_kind", "verifier_chat_template")
        return {f.name[len(prefix) :]: getattr(self, f.name) for f in fields(VerifierSettings)
                if f.name.startswith(prefix) and f.name not in skip}  # fmt: skip

    def resolved(self, kind: str) -> dict[str, str]:
        """The rendering keys of an adapter kind, defaults filled in."""
        set_here = {key: value for key, value in self.rendering().items() if value is not None}
        return {**DEFAULTS[kind], **{k: v for k, v in set_here.items() if k in DEFAULTS[kind]}}

    @staticmethod
    def check_templates(values: dict[str, str]) -> None:
        """Raise ValueError for templates without their placeholder, an empty tag, or one token for good and bad."""
        if values["prompt_template"].count("{question}") != 1:
            raise ValueError("verifier_prompt_template must contain '{question}' once")
        if values["step_template"].count("{step}") != 1:
            raise ValueError("verifier_step_template must contain '{step}' once")
        if not values["step_tag"]:
            raise ValueError("verifier_step_tag must not be empty")
        if "good_token" in values and (not values["good_token"] or values["good_token"] == values["bad_token"]):
            raise ValueError("verifier_good_token and verifier_bad_token must be two different, non-empty tokens")
