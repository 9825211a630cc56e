"""A scripted generator whose outcomes are known exactly."""

from collections.abc import Callable

from search.generator import Generation


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
            out.append([Generation(t, len(prompt), len(t), "eos") for t in texts])
        return out
