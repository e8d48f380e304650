"""What both grids' reports share: loading the records, rliable's intervals with a seeded bootstrap,
bootstrap intervals over seeds, smoothed learning curves, and the plot of the aggregates."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from grid import Run  # noqa: E402
from rliable import library as rly  # noqa: E402
from rliable import metrics  # noqa: E402


def load(data: Path) -> list[dict]:
    """The result records, each with its configuration's name (re-derived from the run's fields); none is
    a SystemExit that says how to make them."""
    records = [json.loads(p.read_text()) for p in sorted(data.glob("*.json"))]
    if not records:
        raise SystemExit(f"no results in {data}: run `python benchmark/results.py run` first")
    for r in records:
        fields = {k: v for k, v in r["run"].items() if k in Run.__dataclass_fields__}
        r["config"] = Run(**fields).config
    return records


@contextmanager
def seeded_bootstrap(seed: int = 0):
    """rliable's ``StratifiedBootstrap`` draws its indices from NumPy's *global* RNG (``np.random.choice``),
    whatever ``random_state`` says (arch only seeds its own generator, which rliable's override of
    ``update_indices`` never uses), so its intervals drifted between two runs of the report. This seeds
    the global RNG for the duration and restores it afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (rliable draws from the legacy global RNG)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)  # inside rliable
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def interval_estimates(scores: dict[str, np.ndarray], reps: int):
    def aggregates(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    with seeded_bootstrap():
        return rly.get_interval_estimates(scores, aggregates, reps=reps)


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, reps: int = 2000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values`` (1-d)."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    means = values[rng.integers(0, len(values), (reps, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (the first points average what there is)."""
    cumsum = np.cumsum(np.insert(y, 0, 0.0))
    counts = np.minimum(np.arange(1, len(y) + 1), window)
    return (cumsum[1:] - cumsum[np.arange(1, len(y) + 1) - counts]) / counts


def seed_curves(by: dict, n_points: int = 40) -> dict:
    """{config: (x, mean, low, high, seeds)} from {config: {seed: [(x, y) of each of its runs]}}: each
    seed's runs (one per task) interpolated onto a shared x grid and averaged, then the seeds averaged
    with a 95% bootstrap interval."""
    rng = np.random.default_rng(0)
    out = {}
    for config, seeds in by.items():
        x_max = min(x[-1] for runs in seeds.values() for x, _ in runs)
        x_min = max(x[0] for runs in seeds.values() for x, _ in runs)
        grid = np.linspace(x_min, x_max, n_points)
        per_seed = np.array(
            [np.mean([np.interp(grid, x, y) for x, y in runs], axis=0) for runs in seeds.values()]
        )
        ci = np.array([bootstrap_ci(per_seed[:, i], rng) for i in range(n_points)])
        out[config] = (grid, per_seed.mean(axis=0), ci[:, 0], ci[:, 1], len(seeds))
    return out


def plot_aggregates(all_estimates, path: Path, colors: dict, paper_means: dict, xlabel: str) -> None:
    """One row per domain: IQM and mean with their 95% intervals per configuration; crosses: the
    paper's means (``paper_means``, {domain: {config: mean}})."""
    fig, axes = plt.subplots(
        len(all_estimates), 2, figsize=(10, 2.2 * len(all_estimates) + 0.6), squeeze=False
    )
    for row, (domain, (points, intervals)) in enumerate(all_estimates.items()):
        configs = list(points)
        for col, name in enumerate(("IQM", "Mean")):
            ax = axes[row, col]
            for i, config in enumerate(configs):
                lo, hi = intervals[config][:, col]
                ax.barh(i, hi - lo, left=lo, height=0.6, color=colors.get(config, "tab:green"), alpha=0.75)
                ax.vlines(points[config][col], i - 0.3, i + 0.3, color="black")
                paper = paper_means.get(domain, {}).get(config)
                if col == 1 and paper is not None:
                    ax.plot(paper, i, marker="x", color="black", markersize=8, label="paper (mean)")
            ax.set_yticks(range(len(configs)), configs if col == 0 else [""] * len(configs), fontsize=8)
            ax.set_xlim(-0.02, 1.02)
            ax.set_title(f"{domain}: {name}", fontsize=10)
            ax.grid(axis="x", alpha=0.3)
        axes[row, 0].invert_yaxis()
        axes[row, 1].invert_yaxis()
        handles, labels = axes[row, 1].get_legend_handles_labels()
        if handles:
            axes[row, 1].legend(handles[:1], labels[:1], fontsize=7, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel(f"{xlabel} (95% stratified bootstrap CI)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
