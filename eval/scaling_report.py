"""The evaluation's report as markdown: accuracies with 95% intervals, and per pool the compute-optimal
choice against its baseline as a paired difference."""

from __future__ import annotations


def cell(value: dict | None) -> str:
    """An interval dict as `0.412 [0.35, 0.47]`; `-` if missing."""
    if value is None:
        return "-"
    return f"{value['estimate']:.3f} [{value['low']:.2f}, {value['high']:.2f}]"


def report_markdown(report: dict, meta: dict) -> str:
    budgets = sorted({int(b) for curve in report["curves"].values() for b in curve})
    questions = report["questions"]
    sizes = ", ".join(f"{n} {name}" for name, n in questions.items())
    lines = [
        f"# Compute-optimal test-time scaling ({sizes} questions)",
        "",
        f"Policy `{meta.get('policy')}`, verifier `{meta.get('verifier')}`, revision model "
        f"`{meta.get('revision_model')}`; sampling seeds {meta.get('seeds')}. Accuracy on the test questions",
        "with its 95% interval (paired bootstrap over questions; a question's seeds stay with it). Choices per",
        f"difficulty bin are made on: {report['choices_made_on']}. Budgets N; lookahead with k steps at N spends",
        "N*(k+1) generations, and compute-optimal choices compete at equal generations.",
        "",
        "## Test accuracy by budget N",
        "",
        "| strategy | " + " | ".join(map(str, budgets)) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for name, curve in sorted(report["curves"].items()):
        lines.append(f"| {name} | " + " | ".join(cell(curve.get(b) or curve.get(str(b))) for b in budgets) + " |")
    for kind, binning in report["binnings"].items():
        sizes = ", ".join(str(row["questions"]) for row in binning["bins"])
        lines += ["", f"## Compute-optimal with {kind} difficulty bins ({binning['by']}; test questions per bin: "
                  f"{sizes})"]  # fmt: skip
        for pool, result in binning["pools"].items():
            gens = sorted(int(g) for g in result["compute_optimal"])
            lines += ["", f"### Pool `{pool}` against {result['baseline_name']}", "",
                      "| generations | compute-optimal | baseline | difference | baseline budget to match |",
                      "|---:|---:|---:|---:|---:|"]  # fmt: skip
            for g in gens:
                match = _get(result["baseline_budget_to_match"], g)
                cells = [cell(_get(result[key], g)) for key in ("compute_optimal", "baseline", "difference")]
                lines.append(f"| {g} | " + " | ".join(cells) + f" | {'> max' if match is None else f'{match:.1f}'} |")
            lines += ["", "| bin | " + " | ".join(f"choice at {g}" for g in gens) + " |",
                      "|---:|" + "---|" * len(gens)]  # fmt: skip
            bins = sorted({int(b) for by in result["choices"].values() for b in by})
            for b in bins:
                cells = []
                for g in gens:
                    choice = _get(_get(result["choices"], g), b)
                    cells.append("-" if choice is None else f"{choice['strategy']} @ {choice['budget']}")
                lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines += ["", "Bin 0 is the hardest (lowest pass@1 or verifier score); bins are rank quantiles of each split,",
              "ties broken by a seeded random rank. Plots: accuracy_vs_budget.png, accuracy_by_bin.png,",
              "compute_optimal.png, efficiency.png.", ""]  # fmt: skip
    return "\n".join(lines)


def _get(mapping: dict | None, key: int):
    """A value keyed by an int in memory or its text in JSON."""
    if mapping is None:
        return None
    return mapping.get(key, mapping.get(str(key)))
