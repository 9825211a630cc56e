"""Search strategies against a scripted policy and verifier whose outcomes are known."""

from collections import defaultdict

import pytest

from search.runtime import Runtime
from search.step_format import ARITH
from search.strategies.best_of_n import sample_best_of_n
from search.strategies.strategy import Candidate, SearchSettings, StrategySpec, pick
from search.strategies.tree_search import tree_search
from tests.fakes import ScriptedVerifier, StepGenerator, step_score

SETTINGS = SearchSettings(max_step_tokens=8, max_new_tokens=64)


def run(spec_text, budget, questions=("q",), depth=3, settings=SETTINGS, generator=None):
    generator = generator or StepGenerator(depth)
    verifier = ScriptedVerifier()
    spec = StrategySpec.parse(spec_text)
    results = tree_search(spec, list(questions), generator, verifier, ARITH, settings, budget, 0)
    return results, generator, verifier


def weighted_by_hand(candidates):
    totals = defaultdict(float)
    for c in candidates:
        if c.answer is not None:
            totals[c.answer] += c.step_scores[-1]
    return max(totals, key=totals.__getitem__)


def test_beam_search_keeps_exactly_the_top_n_over_m_and_ends_with_weighted_best_of_n():
    [result], gen, _ = run("beam:m=2", 8)
    first, second = gen.calls[0], gen.calls[1]
    assert (len(first["prompts"]), first["n"]) == (4, 2)  # N/M roots x M = N samples of the first step
    candidates = [p + g.text for p, gens in zip(first["prompts"], first["outputs"], strict=True) for g in gens]
    top = sorted(candidates, key=lambda c: -step_score(c.split("\n")[1]))[:4]
    assert sorted(second["prompts"]) == sorted(top) and second["n"] == 2
    assert len(gen.calls) == 3  # the third step is the answer line: all 8 finished
    assert len(result.candidates) == 8 and all(c.answer is not None for c in result.candidates)
    assert result.answer == weighted_by_hand(result.candidates)
    assert result.accounting.generations == 8 and result.accounting.samples == 24


def test_finished_beams_are_kept_while_the_rest_search_on():
    [result], _, _ = run("beam:m=2", 8, generator=early_answers(3))
    assert any(len(c.steps) < 3 for c in result.candidates), "some candidates answered early"
    assert all(c.answer is not None for c in result.candidates) and len(result.candidates) == 8


def test_lookahead_scores_after_k_greedy_steps_and_costs_n_times_k_plus_1():
    [result], gen, verifier = run("lookahead:m=2:k=2", 4, depth=5)
    assert result.accounting.generations == 4 * 3
    rollouts = [c for c in gen.calls if c["params"].temperature == 0]
    assert rollouts and all(c["n"] == 1 for c in rollouts)
    # round 0 scores 4 one-step candidates, each after 2 greedy steps: 3 steps scored, the last two greedy
    assert [len(s) for s in verifier.scored[:4]] == [3] * 4
    assert all(s[1:] == ["g1", "g2"] for s in verifier.scored[:4])
    assert all(len(c.step_scores) == len(c.steps) for c in result.candidates)  # own steps only, rollout dropped


def test_lookahead_with_k_0_is_beam_search():
    [beam], _, _ = run("beam:m=2", 8, depth=4)
    [look], _, _ = run("lookahead:m=2:k=0", 8, depth=4)
    assert [c.steps for c in beam.candidates] == [c.steps for c in look.candidates]
    assert beam.answer == look.answer


def early_answers(depth: int) -> StepGenerator:
    """A scripted policy whose paths sometimes answer before the last step."""
    gen = StepGenerator(depth)
    gen.step = lambda d, r: f"A:{r % 3}" if d >= depth - 1 or (r is not None and r % 4 == 0) else f"s{d}.{r}"
    return gen


def test_dvts_subtrees_are_independent_and_greedy_over_m():
    questions = [f"q{i}" for i in range(6)]
    small, _, _ = run("dvts:m=2", 4, questions, generator=early_answers(5))  # 2 subtrees
    large, gen, _ = run("dvts:m=2", 8, questions, generator=early_answers(5))  # 4: the first 2 are the same trees
    assert any(len(c.steps) < 5 for r in large for c in r.candidates), "some subtrees finish early"
    for s, big in zip(small, large, strict=True):
        # the vote is over all N completions: every subtree's M children of its last round
        assert len(s.candidates) == 4 and len(big.candidates) == 8 and big.answer == weighted_by_hand(big.candidates)
        assert [c.steps for c in s.candidates] == [c.steps for c in big.candidates[:4]]  # the same two subtrees
        for pair in (big.candidates[i : i + 2] for i in range(0, 8, 2)):  # siblings: one parent, one step each
            assert pair[0].steps[:-1] == pair[1].steps[:-1]
    assert (len(gen.calls[0]["prompts"]), gen.calls[0]["n"]) == (6 * 4, 2)  # 4 subtrees per question, M each
    for before, after in zip(gen.calls, gen.calls[1:], strict=False):
        children = [[p + g.text for g in gens] for p, gens in zip(before["prompts"], before["outputs"], strict=True)]
        parents = [next(i for i, own in enumerate(children) if child in own) for child in after["prompts"]]
        assert len(set(parents)) == len(parents)  # one path per subtree: never two children of one parent
        for parent, child in zip(parents, after["prompts"], strict=True):  # the best of its OWN M candidates
            assert child == max(children[parent], key=lambda c: step_score(c.split("\n")[-2]))


def test_beam_search_ranks_prefixes_by_the_configured_aggregation():
    settings = SearchSettings(max_step_tokens=8, max_new_tokens=64, aggregation="min")
    _, gen, verifier = run("beam:m=2", 8, depth=4, settings=settings)
    second, third = gen.calls[1], gen.calls[2]
    children = [p + g.text for p, gens in zip(second["prompts"], second["outputs"], strict=True) for g in gens]

    def min_score(prompt):
        return min(step_score(s) for s in ARITH.split_steps(prompt[len(ARITH.prompt("q")) :]))

    assert sorted(third["prompts"]) == sorted(sorted(children, key=lambda c: -min_score(c))[:4])


def test_paths_cut_off_without_an_answer_do_not_count_as_finished():
    gen = StepGenerator(3)
    real_step = gen.step
    gen.step = lambda d, r: "x" * 40 if r is not None and d == 0 and r % 2 else real_step(d, r)  # too long
    [result], _, _ = run("beam:m=2", 4, generator=gen, settings=SearchSettings(max_step_tokens=8, max_new_tokens=30))
    assert len(result.candidates) == 4 and all(c.answer is not None for c in result.candidates)  # searched on


def test_searches_are_batched_across_questions_and_reproducible():
    results, gen, _ = run("beam:m=2", 4, questions=("q1", "q2", "q3"))
    assert len(gen.calls[0]["prompts"]) == 3 * 2  # one generate call per round for all questions
    again, _, _ = run("beam:m=2", 4, questions=("q1", "q2", "q3"))
    assert [r.candidates for r in results] == [r.candidates for r in again]
    [alone], _, _ = run("beam:m=2", 4, questions=("q2",))
    assert alone.candidates == results[1].candidates  # a question's search does not depend on its batch


def test_unfinishable_question_has_no_answer_and_does_not_stop_the_batch():
    gen = StepGenerator(3, stuck=frozenset({"stuck"}))
    results, _, _ = run("beam:m=2", 4, questions=("stuck", "q"), generator=gen)
    assert results[0].answer is None and results[0].solution == [] and results[1].answer is not None
    [deep], _, _ = run("beam:m=2", 4, depth=50, settings=SearchSettings(max_rounds=3))
    assert deep.answer is None and all(c.answer is None for c in deep.candidates)
    samples = sample_best_of_n(["stuck", "q"], gen, ScriptedVerifier(), ARITH, SETTINGS, 4, 0)
    assert samples[0].at(4, "weighted").answer is None and samples[1].at(4, "weighted").answer is not None


def test_best_of_n_smaller_budgets_are_exact_subsamples_of_one_run():
    verifier = ScriptedVerifier()
    big = sample_best_of_n(["q"], StepGenerator(), verifier, ARITH, SETTINGS, 16, 0)[0]
    small = sample_best_of_n(["q"], StepGenerator(), verifier, ARITH, SETTINGS, 4, 0)[0]
    for select in ("majority", "naive", "weighted"):
        assert big.at(4, select) == small.at(4, select)
    assert big.at(4, "weighted").accounting.generations == 4
    assert big.at(16, "weighted").accounting.generated_tokens == sum(c.generated_tokens for c in big.costs)


def test_pick_takes_the_best_candidate_of_the_chosen_answer():
    candidates = [Candidate(["a"], "1", score=0.9), Candidate(["b"], "2", score=0.5), Candidate(["c"], "2", score=0.6)]
    assert pick(candidates, "weighted") == ("2", ["c"])  # 1.1 against 0.9
    assert pick(candidates, "naive") == ("1", ["a"])
    assert pick(candidates, "majority") == ("2", ["c"])
    assert pick([Candidate(["x"], None, score=1.0)], "weighted") == (None, [])
    equivalent = [Candidate(["a"], "0.5", score=0.4), Candidate(["b"], "\\frac{1}{2}", score=0.5),
                  Candidate(["c"], "3", score=0.8)]  # fmt: skip
    assert pick(equivalent, "weighted") == ("\\frac{1}{2}", ["b"])  # 0.9 for one half, as one answer


def test_strategy_specs_and_impossible_budgets():
    assert StrategySpec.parse("beam:m=sqrt").width(16) == 4
    assert StrategySpec.parse("lookahead", beam_width=2, lookahead=3) == StrategySpec("lookahead", 2, 3)
    for text in ("best_of_n:select=naive", "beam:m=4", "lookahead:m=2:k=1", "dvts:m=sqrt"):
        assert str(StrategySpec.parse(text)) == text
    bad = {
        "beam:m=sqrt": (8, "perfect square"),
        "beam:m=3": (16, "not divisible"),
        "dvts:m=4": (0, "budget must be >= 1"),
    }
    for text, (budget, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            StrategySpec.parse(text).width(budget)
    for text, message in {"lookahead:k=-1": "k must be >= 0", "beam:k=1": "bad option", "greedy": "unknown strategy",
                          "best_of_n:select=best": "unknown selection", "beam:m=x": "integer"}.items():  # fmt: skip
        with pytest.raises(ValueError, match=message):
            StrategySpec.parse(text)


def test_runtime_refuses_verifier_strategies_without_a_verifier():
    runtime = Runtime(StepGenerator(), ARITH)
    runtime.check(StrategySpec.parse("best_of_n:select=majority"), 4)
    for text in ("beam", "best_of_n"):
        with pytest.raises(ValueError, match="needs a verifier"):
            runtime.check(StrategySpec.parse(text), 4)
    [result] = runtime.solve(StrategySpec.parse("best_of_n:select=majority"), ["q"], 8)
    assert result.answer is not None and result.accounting.verifier_tokens == 0
