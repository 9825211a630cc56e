"""A scripted generator whose outcomes are known exactly."""

from collections.abc import Callable

from search.generation.generator import Generation, stable_seed
from search.step_format import ARITH

CUT = "\x00cut"  # a scripted text ending with this was cut off by the token limit (stop reason "length")


class ScriptedGenerator:
    """`script(prompt, n)` returns the n continuations of a prompt; every call is recorded."""

    def __init__(self, script: Callable[[str, int], list[str]]):
        self.script, self.calls = script, []

    def generate(self, prompts, params, n=1, seeds=None):
        self.calls.append((list(prompts), n))
        out = []
        for prompt in prompts:
            texts = self.script(prompt, n)
            assert len(texts) == n
            out.append([Generation(t.removesuffix(CUT), len(prompt), len(t), "length" if t.endswith(CUT) else "eos")
                        for t in texts])  # fmt: skip
        return out


class StepGenerator:
    """A policy whose samples are known: step d of a path is `s<d>.<r>` with r drawn from the seed,
    the step at `depth - 1` is an answer line `A:<r % 3>`; greedy (temperature 0) samples `g<d>`.
    Questions in `stuck` never end a step (stop reason `length`). Every call is recorded."""

    def __init__(self, depth: int = 3, stuck: frozenset[str] = frozenset()):
        self.depth, self.stuck, self.calls = depth, stuck, []

    def step(self, d: int, r: int | None) -> str:
        if d >= self.depth - 1:
            return f"A:{0 if r is None else r % 3}"
        return f"g{d}" if r is None else f"s{d}.{r}"

    def generate(self, prompts, params, n=1, seeds=None):
        seeds = list(range(len(prompts))) if seeds is None else list(seeds)
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            d = prompt.count("\n") - 1  # steps already written
            gens = []
            for j in range(n):
                r = None if params.temperature == 0 else stable_seed(seed, j) % 1000
                if ARITH.question_of(prompt.split("\n")[0] + "\n") in self.stuck:
                    gens.append(Generation("x" * params.max_new_tokens, len(prompt), params.max_new_tokens, "length"))
                elif params.stop_at == "step":
                    text = self.step(d, r) + "\n"
                    gens.append(Generation(text, len(prompt), len(text), "step"))
                else:
                    rs = [None if r is None else stable_seed(seed, j, k) % 1000 for k in range(d, self.depth)]
                    text = "".join(self.step(k, rk) + "\n" for k, rk in zip(range(d, self.depth), rs, strict=True))
                    gens.append(Generation(text, len(prompt), len(text), "eos"))
            out.append(gens)
        self.calls.append({"prompts": list(prompts), "params": params, "n": n, "outputs": out})
        return out


def step_score(step: str) -> float:
    """The scripted verifier's score of a step: a fixed pseudo-random number in [0, 1)."""
    return stable_seed("score", step) % 1000 / 1000


class ScriptedVerifier:
    """Scores each step by `step_score`; records the step lists it scored."""

    aggregation = "last"

    def __init__(self):
        self.scored = []

    def score(self, prompts, solutions):
        self.scored += [list(s) for s in solutions]
        return [[step_score(step) for step in steps] for steps in solutions]

    def count_tokens(self, prompts, solutions):
        return [len(p) + len(ARITH.render_steps(s)) for p, s in zip(prompts, solutions, strict=True)]
