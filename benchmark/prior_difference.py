"""Difference in success between two groups of priors (e.g. three training seeds each), with a
hierarchical bootstrap interval: resample the seeds of each group, then each seed's episodes
(binomially, from its success rate and episode count), 10,000 times with a fixed seed.

Reads the JSON files of ``python -m cleanrl_lago.evaluate_prior PRIOR --json FILE``:

    python benchmark/prior_difference.py --a lm-s0.json lm-s1.json lm-s2.json \\
        --b gru-s0.json gru-s1.json gru-s2.json --cells test/sampled test/greedy
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def load(files: list[str], cell: str) -> list[tuple[float, int]]:
    out = []
    for f in files:
        data = json.load(open(f))
        if cell not in data:
            raise SystemExit(f"error: {f} has no {cell!r} (it has {sorted(k for k in data if k != 'prior')})")
        out.append((data[cell]["success"], data[cell]["episodes"]))
    return out


def bootstrap_mean(group: list[tuple[float, int]], rng: np.random.Generator, n: int) -> np.ndarray:
    rates = np.array([r for r, _ in group])
    episodes = np.array([e for _, e in group])
    picks = rng.integers(len(group), size=(n, len(group)))
    return (rng.binomial(episodes[picks], rates[picks]) / episodes[picks]).mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="+", required=True, help="evaluation JSONs of group A")
    parser.add_argument("--b", nargs="+", required=True, help="evaluation JSONs of group B")
    parser.add_argument("--cells", nargs="+", default=["test/sampled"], help="split/mode cells to compare")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"A: {len(args.a)} priors, B: {len(args.b)} priors; 95% hierarchical bootstrap ({args.samples} samples)"
    )
    for cell in args.cells:
        a, b = load(args.a, cell), load(args.b, cell)
        rng = np.random.default_rng(args.seed)
        diff = bootstrap_mean(a, rng, args.samples) - bootstrap_mean(b, rng, args.samples)
        low, high = np.percentile(diff, [2.5, 97.5])
        mean_a, mean_b = np.mean([r for r, _ in a]), np.mean([r for r, _ in b])
        print(
            f"{cell:>16}: A {mean_a:.1%}  B {mean_b:.1%}  A - B {mean_a - mean_b:+.1%} "
            f"[{low:+.1%}, {high:+.1%}]  P(A - B > 0) {np.mean(diff > 0):.2f}"
        )


if __name__ == "__main__":
    main()
