"""The evaluation's plots: one colour (and marker) per strategy, the same in every plot of a report, with
the 95% interval as a band where there is one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

MARKERS = "osD^v<>ph*"


def styles(names: Iterable[str]) -> dict[str, dict]:
    """name -> matplotlib line style: 20 distinct colours (tab20), then the same colours dashed."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"].colors
    out = {}
    for i, name in enumerate(sorted(set(names))):
        out[name] = {"color": palette[i % 20], "marker": MARKERS[i % len(MARKERS)],
                     "linestyle": "-" if i < 20 else "--"}  # fmt: skip
    return out


def _curves(ax, named: Mapping[str, Mapping], style: dict[str, dict], title: str) -> None:
    """Curves of budget -> accuracy, or budget -> interval dict (a band from low to high)."""
    for name, curve in sorted(named.items()):
        points = sorted((int(g), v) for g, v in curve.items() if v is not None)
        if not points:
            continue
        xs = [g for g, _ in points]
        ys = [v["estimate"] if isinstance(v, dict) else v for _, v in points]
        ax.plot(xs, ys, label=name, **style[name])
        if isinstance(points[0][1], dict):
            ax.fill_between(xs, [v["low"] for _, v in points], [v["high"] for _, v in points],
                            color=style[name]["color"], alpha=0.12)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set(xlabel="generation budget", ylabel="accuracy", title=title)


def plot_report(report: dict, out: Path) -> None:
    """accuracy_vs_budget.png, accuracy_by_bin.png, compute_optimal.png and efficiency.png under `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pools = {(kind, pool): r for kind, b in report["binnings"].items() for pool, r in b["pools"].items()}
    co_names = {f"compute-optimal ({pool}, {kind} bins)" for kind, pool in pools}
    style = styles([*report["curves"], *co_names, *(r["baseline_name"] for r in pools.values())])

    fig, ax = plt.subplots(figsize=(8, 5.5))
    _curves(ax, report["curves"], style, "test accuracy vs budget N (95% intervals)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_budget.png", dpi=120)
    plt.close(fig)

    bins = report["binnings"]["oracle"]["bins"]
    fig, axes = plt.subplots(1, len(bins), figsize=(3.4 * len(bins), 3.6), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], bins, strict=True):
        _curves(ax, row["curves"], style, f"oracle bin {row['bin']} ({row['questions']} q)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "accuracy_by_bin.png", dpi=120)
    plt.close(fig)

    names = sorted({pool for _, pool in pools})
    fig, axes = plt.subplots(1, len(names), figsize=(5.8 * len(names), 4.6), squeeze=False)
    for ax, pool in zip(axes[0], names, strict=True):
        named = {f"compute-optimal ({pool}, {kind} bins)": r["compute_optimal"]
                 for (kind, p), r in pools.items() if p == pool}  # fmt: skip
        baseline = next(r for (_, p), r in pools.items() if p == pool)
        named[baseline["baseline_name"]] = baseline["baseline"]
        _curves(ax, named, style, f"pool {pool}: compute-optimal (held out) vs its baseline")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "compute_optimal.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for (kind, pool), result in pools.items():
        points = sorted((int(g), m) for g, m in result["baseline_budget_to_match"].items() if m is not None)
        name = f"compute-optimal ({pool}, {kind} bins)"
        ax.plot([g for g, _ in points], [m for _, m in points], label=f"{pool}, {kind} bins", **style[name])
    top = max(report["generation_budgets"])
    ax.plot([1, top], [1, top], linestyle=":", color="grey", label="same budget")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set(xlabel="compute-optimal budget", ylabel="baseline budget to match", title="efficiency (point estimates)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "efficiency.png", dpi=120)
    plt.close(fig)
