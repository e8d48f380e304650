"""The early grid's report (``python benchmark/results.py report --grid early``): rliable aggregates,
performance profiles, probabilities of improvement, learning curves and the kl_coef sweep, as tables
and PNG plots.

Scores are final evaluation success rates (0..1), one per run. A "task" is a CLEVR-Robot phrasing
split (train, held-out) or a Meta-World task; the aggregates pool every task and seed of a domain:
IQM and mean with 95% stratified bootstrap confidence intervals (rliable), and performance profiles
(the share of runs with a score above each threshold). Learning curves are the ``charts/success_rate``
of training (sampled actions), against env steps and against wall-clock seconds, with 95% bootstrap
intervals over seeds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from report_common import (  # noqa: E402
    bootstrap_ci,
    interval_estimates,
    load,
    plot_aggregates,
    seed_curves,
    seeded_bootstrap,
    smooth,
)
from rliable import library as rly  # noqa: E402
from rliable import metrics  # noqa: E402

REPS = 20_000
SMOOTHING = 3  # logged points per moving average in the learning curves
COLORS = {
    "PPO": "tab:gray",
    "PPO + MLP prior": "tab:blue",
    "PPO + LM prior": "tab:red",
    "PPO + random-LM prior": "tab:orange",
    "SAC": "tab:gray",
    "SAC + LM prior": "tab:red",
    "PPO + LM prior (bf16 LM)": "tab:purple",
    "SAC + LM prior (bf16 LM)": "tab:purple",
}
MAIN_CONFIGS = ("PPO", "PPO + MLP prior", "PPO + LM prior", "PPO + random-LM prior")
BF16 = "PPO + LM prior (bf16 LM)"  # the shipped default priors, run after the main grid
CLEVR_TRAIN, CLEVR_HELDOUT = "CLEVR-Robot, train phrasings (PPO)", "CLEVR-Robot, held-out phrasings (PPO)"
DOMAINS = {  # domain: the configurations compared in it
    CLEVR_TRAIN: (*MAIN_CONFIGS, BF16),
    CLEVR_HELDOUT: (*MAIN_CONFIGS, BF16),
    "Meta-World (PPO)": (*MAIN_CONFIGS[:3], BF16),
    "Meta-World (SAC)": ("SAC", "SAC + LM prior", "SAC + LM prior (bf16 LM)"),
}
# Does X beat Y? Probability of improvement P(X > Y) for these pairs, where both were run.
PAIRS = (
    ("PPO + LM prior", "PPO"),
    ("PPO + MLP prior", "PPO"),
    ("PPO + LM prior", "PPO + MLP prior"),
    ("PPO + LM prior", "PPO + random-LM prior"),
    ("SAC + LM prior", "SAC"),
    (BF16, "PPO"),
    (BF16, "PPO + LM prior"),
    ("SAC + LM prior (bf16 LM)", "SAC"),
    ("SAC + LM prior (bf16 LM)", "SAC + LM prior"),
)
# The paper's figures (mean success rate, vanilla PPO -> LaGO).
PAPER = {
    CLEVR_TRAIN: {"PPO": 0.151, "PPO + LM prior": 0.272},
    "Meta-World (PPO)": {"PPO": 0.027, "PPO + LM prior": 0.152},
}


def task_scores(record: dict) -> dict[tuple[str, str], float]:
    """{(domain, task): final evaluation success rate} of one run.

    On CLEVR-Robot the split is the one the prior was given while PPO trained: each prior has one run
    per split. The agent never reads the instruction, so a vanilla PPO run (no prior) is the baseline
    of both splits (its two evaluations differ only in the phrasings, which it ignores).
    """
    run = record["run"]
    if run["env"] == "clevr":
        by_split = {"train": CLEVR_TRAIN, "heldout": CLEVR_HELDOUT}
        splits = ("train", "heldout") if run["prior"] == "none" else (run.get("split", "train"),)
        return {(by_split[s], "CLEVR-Robot"): record["eval"][f"success_rate_{s}"] for s in splits}
    domain = "Meta-World (PPO)" if run["algo"] == "ppo" else "Meta-World (SAC)"
    return {(domain, run["env"]): record["eval"]["success_rate"]}


def domains_of(record: dict) -> list[str]:
    return [domain for domain, _ in task_scores(record)]


def score_matrices(records: list[dict], domain: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """{config: [seeds x tasks]} of the domain, over the seeds that every configuration has finished
    on every task (so that comparisons are paired by seed)."""
    configs = DOMAINS[domain]
    by = defaultdict(dict)  # (config, task) -> {seed: score}
    for r in records:
        if r["config"] in configs:
            for (d, task), score in task_scores(r).items():
                if d == domain:
                    by[r["config"], task][r["run"]["seed"]] = score
    tasks = sorted({task for _, task in by})
    present = [c for c in configs if all(by.get((c, t)) for t in tasks)]
    if not tasks or not present:
        return {}, tasks
    seeds = sorted(set.intersection(*(set(by[c, t]) for c in present for t in tasks)))
    return {c: np.array([[by[c, t][s] for t in tasks] for s in seeds]) for c in present}, tasks


def curves(records, domain, configs, x_key: str, n_points: int = 40):
    """:func:`seed_curves` of the domain's runs: success rate smoothed over SMOOTHING logged points."""
    by = defaultdict(lambda: defaultdict(list))  # config -> seed -> [(x, y)]
    for r in records:
        if domain in domains_of(r) and r["config"] in configs and r["curve"]["step"]:
            by[r["config"]][r["run"]["seed"]].append(
                (np.array(r["curve"][x_key]), smooth(np.array(r["curve"]["success_rate"]), SMOOTHING))
            )
    return seed_curves(by, n_points)


def plot_profiles(all_scores, path: Path, reps: int) -> None:
    taus = np.linspace(0.0, 1.0, 41)
    fig, axes = plt.subplots(1, len(all_scores), figsize=(4.2 * len(all_scores), 3.4), squeeze=False)
    for ax, (domain, scores) in zip(axes[0], all_scores.items(), strict=True):
        with seeded_bootstrap():
            profiles, cis = rly.create_performance_profile(scores, taus, reps=reps)
        for config in scores:
            ax.plot(taus, profiles[config], color=COLORS.get(config), label=config)
            ax.fill_between(taus, cis[config][0], cis[config][1], color=COLORS.get(config), alpha=0.2)
        ax.set_title(domain, fontsize=10)
        ax.set_xlabel(r"success rate $\tau$")
        ax.set_ylabel(r"fraction of runs with score > $\tau$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(records, path: Path, x_key: str, x_label: str) -> None:
    fig, axes = plt.subplots(1, len(DOMAINS), figsize=(4.2 * len(DOMAINS), 3.4), squeeze=False)
    for ax, (domain, configs) in zip(axes[0], DOMAINS.items(), strict=True):
        for config, (x, mean, lo, hi, _) in curves(records, domain, configs, x_key).items():
            ax.plot(x, mean, color=COLORS.get(config), label=config)
            ax.fill_between(x, lo, hi, color=COLORS.get(config), alpha=0.2)
        ax.set_title(domain, fontsize=10)
        ax.set_xlabel(x_label)
        ax.set_ylabel("training success rate")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def kl_sweep(records) -> dict[str, dict[float, tuple[float, float, float, int]]]:
    """{env: {kl_coef: (mean, ci_low, ci_high, n)}} of PPO with the LM prior on CLEVR-Robot, train
    phrasings (kl 0: vanilla PPO)."""
    rng = np.random.default_rng(0)
    by = defaultdict(lambda: defaultdict(list))
    for r in records:
        run = r["run"]
        sweep_run = run["env"] == "clevr" and run.get("split", "train") == "train"
        if sweep_run and run["algo"] == "ppo" and run["prior"] in ("lm", "none"):
            by[run["env"]][run["kl_coef"]].append(r["eval"]["success_rate_train"])
    return {
        env: {kl: (float(np.mean(v)), *bootstrap_ci(np.array(v), rng), len(v)) for kl, v in sorted(d.items())}
        for env, d in by.items()
    }


def plot_kl_sweep(sweep, path: Path) -> None:
    fig, axes = plt.subplots(1, len(sweep), figsize=(4.2 * len(sweep), 3.2), squeeze=False)
    for ax, (env, points) in zip(axes[0], sweep.items(), strict=True):
        kls = list(points)
        x = np.arange(len(kls))
        mean = np.array([points[k][0] for k in kls])
        err = np.array([[points[k][0] - points[k][1], points[k][2] - points[k][0]] for k in kls]).T
        ax.errorbar(x, mean, yerr=err, fmt="o-", color="tab:red", capsize=4)
        ax.set_xticks(x, [f"{k:g}" for k in kls])
        ax.set_xlabel("kl_coef (0: vanilla PPO)")
        ax.set_ylabel("final success rate (mean, 95% CI)")
        ax.set_title("CLEVR-Robot" if env == "clevr" else env, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(data: Path, out: Path, reps: int = REPS) -> None:
    records = load(data)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"<!-- written by `python benchmark/results.py report` from {len(records)} runs -->", ""]
    all_scores, all_estimates = {}, {}
    lines += [
        "| domain | configuration | seeds x tasks | IQM [95% CI] | mean [95% CI] | per task (mean over seeds) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for domain in DOMAINS:
        scores, tasks = score_matrices(records, domain)
        if not scores:
            continue
        points, intervals = interval_estimates(scores, reps)
        all_scores[domain], all_estimates[domain] = scores, (points, intervals)
        for config, matrix in scores.items():
            (iqm, mean), ci = points[config], intervals[config]
            per_task = ", ".join(f"{t}: {v:.2f}" for t, v in zip(tasks, matrix.mean(axis=0), strict=True))
            lines.append(
                f"| {domain} | {config} | {matrix.shape[0]} x {matrix.shape[1]} | {iqm:.3f} [{ci[0, 0]:.3f}, {ci[1, 0]:.3f}] "
                f"| {mean:.3f} [{ci[0, 1]:.3f}, {ci[1, 1]:.3f}] | {per_task} |"
            )
    lines += [
        "",
        "| kl_coef sweep (PPO + LM prior) | kl_coef | runs | mean final success [95% CI] |",
        "| --- | --- | --- | --- |",
    ]
    sweep = kl_sweep(records)
    for env, points in sweep.items():
        for kl, (mean, lo, hi, n) in points.items():
            lines.append(
                f"| {'CLEVR-Robot, train phrasings' if env == 'clevr' else env} | {kl:g} | {n} | {mean:.3f} [{lo:.3f}, {hi:.3f}] |"
            )
    lines += [
        "",
        "| domain | X | Y | seeds x tasks | P(X > Y) [95% CI] |",
        "| --- | --- | --- | --- | --- |",
    ]
    for domain, scores in all_scores.items():
        pairs = {f"{x},{y}": (scores[x], scores[y]) for x, y in PAIRS if x in scores and y in scores}
        if not pairs:
            continue
        with seeded_bootstrap():
            poi, poi_ci = rly.get_interval_estimates(
                pairs, metrics.probability_of_improvement, reps=max(reps // 10, 100)
            )
        for pair, (x, y) in zip(pairs, (p.split(",") for p in pairs), strict=True):
            shape = scores[x].shape
            lines.append(
                f"| {domain} | {x} | {y} | {shape[0]} x {shape[1]} | {float(poi[pair]):.2f} "
                f"[{float(poi_ci[pair][0, 0]):.2f}, {float(poi_ci[pair][1, 0]):.2f}] |"
            )
    speed = defaultdict(list)
    for r in records:
        domain = "CLEVR-Robot (PPO)" if r["run"]["env"] == "clevr" else domains_of(r)[0]
        speed[domain, r["config"]].append((r["sps"], r["wall_seconds"]))
    lines += [
        "",
        "| domain | configuration | runs | SPS (median) | wall seconds per run (median) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (domain, config), values in sorted(speed.items()):
        sps, wall = np.median(np.array(values), axis=0)
        lines.append(f"| {domain} | {config} | {len(values)} | {sps:.0f} | {wall:.0f} |")
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    summary = {
        domain: {
            config: {
                "iqm": float(points[config][0]),
                "mean": float(points[config][1]),
                "iqm_ci": intervals[config][:, 0].tolist(),
                "mean_ci": intervals[config][:, 1].tolist(),
            }
            for config in points
        }
        for domain, (points, intervals) in all_estimates.items()
    }
    (out / "summary.json").write_text(json.dumps({"aggregates": summary, "kl_sweep": sweep}, indent=1))
    plot_aggregates(all_estimates, out / "aggregates.png", COLORS, PAPER, "final success rate")
    plot_profiles(all_scores, out / "performance_profiles.png", reps // 10)
    plot_curves(records, out / "curves_steps.png", "step", "env steps")
    plot_curves(records, out / "curves_wall.png", "seconds", "wall-clock seconds (2 runs share 2 cores)")
    if sweep:
        plot_kl_sweep(sweep, out / "kl_sweep.png")
    print("\n".join(lines))
    print(f"plots and tables in {out}")
