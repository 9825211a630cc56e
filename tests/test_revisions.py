"""Sequential revision chains and their hierarchical selection, against scripted models."""

from collections import Counter

import pytest

from search.generation.generator import Generation, stable_seed
from search.runtime import Runtime
from search.step_format import ARITH
from search.strategies.revisions import history_window, sample_revision_chains, select_revisions
from search.strategies.strategy import Candidate, SearchSettings, StrategySpec
from tests.fakes import ScriptedVerifier

SETTINGS = SearchSettings(max_new_tokens=16)


def chain(*pairs):
    return [Candidate([f"A:{a}"], str(a), score=s) for a, s in pairs]


CHAINS = [
    chain((1, 0.9), (2, 0.2), (2, 0.2), (2, 0.2)),  # within: 1 (0.9) beats 2 (0.6) -> 1, best attempt 0.9
    chain((2, 0.3), (2, 0.3), (3, 0.5), (2, 0.1)),  # within: 2 (0.7) beats 3 (0.5) -> 2, best attempt 0.3
    chain((1, 0.1), (3, 0.8), (3, 0.1), (2, 0.0)),  # within: 3 (0.9) -> 3, best attempt 0.8
]


def test_hierarchical_selection_picks_within_chains_then_across():
    assert select_revisions(CHAINS, "weighted") == ("1", ["A:1"])  # across: 1 (0.9) > 3 (0.8) > 2 (0.3)
    # what the two other readings would give: a flat weighted vote (3: 1.4) and the flat majority (2: x6)
    flat = [c for ch in CHAINS for c in ch]
    assert select_revisions([flat], "weighted")[0] == "3"
    assert select_revisions(CHAINS, "majority")[0] == "2"
    assert select_revisions([chain((1, 0.5))], "weighted")[0] == "1"
    assert select_revisions([[Candidate(["x"], None)]], "weighted") == (None, [])


class HistoryEcho:
    """A revision model that answers with the number of attempts in its prompt; the first time it
    sees a prompt with exactly 2 attempts it is cut off (no answer). Records every prompt."""

    def __init__(self):
        self.prompts, self.seen = [], set()

    def generate(self, prompts, params, n=1, seeds=None):
        assert n == 1
        self.prompts.append(list(prompts))
        out = []
        for prompt in prompts:
            k = prompt.count("\nA:")  # answer lines: one per attempt shown
            if k == 2 and prompt not in self.seen:
                out.append([Generation("1+1=2\n", len(prompt), 16, "length")])
            else:
                out.append([Generation(f"A:{k}\n", len(prompt), 2, "eos")])
        self.seen.update(prompts)
        return out


def test_chains_keep_the_four_most_recent_answered_attempts_in_context():
    reviser = HistoryEcho()
    [result] = sample_revision_chains(["1+1"], reviser, None, ARITH, SETTINGS, chains=2, length=7, seed=0)
    answers = [a.candidate.answer for a in result.chains[0]]
    assert answers == ["0", "1", None, "2", "3", "4", "4"]  # the cut attempt never enters a prompt
    assert result.chains[0][6].prompt == ARITH.revision_prompt("1+1", [["A:1"], ["A:2"], ["A:3"], ["A:4"]])
    assert result.chains[0][0].prompt == ARITH.revision_prompt("1+1", [])
    assert [len(p) for p in reviser.prompts] == [2] * 7  # one batched call per step for all chains
    assert [a.candidate.answer for a in result.chains[1]] == answers


class SeededAnswers:
    """A revision model whose answer depends only on the seed of the attempt."""

    def generate(self, prompts, params, n=1, seeds=None):
        return [[Generation(f"A:{stable_seed(s) % 4}\n", 3, 2, "eos")] for s in seeds]


@pytest.mark.parametrize("select", ["weighted", "majority"])
def test_smaller_budgets_are_prefixes_of_the_chains_and_cost_what_they_sample(select):
    runtime = Runtime(SeededAnswers(), ARITH, None, SETTINGS, SeededAnswers(), ScriptedVerifier())
    spec = StrategySpec.parse(f"revision:l=2:select={select}")
    questions = ["1+1", "2*3", "9-4"]
    swept = runtime.sweep([spec], questions, [2, 8], seed=5)
    assert swept[(str(spec), 2)] == runtime.solve(spec, questions, 2, seed=5)
    for small, large in zip(swept[(str(spec), 2)], swept[(str(spec), 8)], strict=True):
        assert large.candidates[:2] == small.candidates
        assert (large.accounting.generations, large.accounting.samples) == (8, 8)
        assert (large.accounting.verifier_tokens > 0) == (select == "weighted")
    answers = Counter(c.answer for r in swept[(str(spec), 8)] for c in r.candidates)
    assert len(answers) > 1  # the chains really sample


def test_fully_sequential_and_fully_parallel_ratios():
    runtime = Runtime(SeededAnswers(), ARITH, None, SETTINGS, SeededAnswers(), ScriptedVerifier())
    sequential, parallel = StrategySpec.parse("revision:l=all"), StrategySpec.parse("revision:l=1")
    questions = ["1+1", "2*3"]
    swept = runtime.sweep([sequential, parallel], questions, [2, 4, 8], seed=5)
    for budget in (2, 4, 8):
        for one in swept[(str(sequential), budget)]:  # one chain of N attempts, each after the last
            assert len(one.candidates) == budget and one.accounting.generations == budget
        assert swept[(str(sequential), budget)] == runtime.solve(sequential, questions, budget, seed=5)
        for flat in swept[(str(parallel), budget)]:
            assert len(flat.candidates) == budget
    # a chain of 8's first 4 attempts are the chain of 4; l=all at N=2 is l=2 at N=2
    assert swept[(str(sequential), 2)] == runtime.solve(StrategySpec.parse("revision:l=2"), questions, 2, seed=5)


def test_revision_specs_are_checked_before_any_work():
    spec = StrategySpec.parse("revision:l=4:select=majority")
    assert str(spec) == "revision:l=4:select=majority" and StrategySpec.parse(str(spec)) == spec
    assert StrategySpec.parse("revision", revision_length=2).length == 2
    with pytest.raises(ValueError, match="bad option"):
        StrategySpec.parse("revision:m=2")
    with pytest.raises(ValueError, match="not a multiple of the chain length"):
        spec.width(6)
    bare = Runtime(SeededAnswers(), ARITH)
    with pytest.raises(ValueError, match="needs a revision model"):
        bare.check(spec, 4)
    without_orm = Runtime(SeededAnswers(), ARITH, None, SETTINGS, SeededAnswers())
    without_orm.check(spec, 8)  # majority needs no verifier
    with pytest.raises(ValueError, match="needs a revision verifier"):
        without_orm.check(StrategySpec.parse("revision:l=4"), 8)


def test_a_short_context_keeps_fewer_attempts_oldest_dropped_first():
    answered = [[f"{i}+1={i + 1}", f"A:{i + 1}"] for i in range(6)]
    assert history_window(ARITH, "q", answered) == answered[-4:]  # no limit known: the last 4
    prompt = lambda window: ARITH.revision_prompt("q", window)  # noqa: E731
    attempt = len(ARITH.render_steps(answered[-1]))
    for keep in (4, 3, 1):
        context = len(prompt(answered[-keep:])) + attempt  # exactly room for `keep` attempts and one more
        assert history_window(ARITH, "q", answered, len, context) == answered[-keep:]
    assert history_window(ARITH, "q", answered, len, 10) == []  # not even one fits: the bare question
