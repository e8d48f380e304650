"""SPS of the PPO scripts with the prior against ``--kl-coef 0``, and peak memory, in one run.

    python benchmark/ppo_sps.py                      # ppo_lago_metaworld.py, the shipped default prior
    python benchmark/ppo_sps.py --script clevr
    python benchmark/ppo_sps.py --prior-quantization none   # other options go to the LaGO runs

Vanilla and LaGO runs alternate (``--repeats`` pairs, same budget and seed) on the same machine, so
a slow spell of a shared CPU hits both; the figure printed last is the median LaGO SPS divided by
the median vanilla SPS. SPS is the script's own ``charts/SPS`` at the end of training (env steps per
second of wall time, the prior included, the start-up before the first step not); peak memory is
each run's own maximum resident set size.
"""

import argparse
import statistics

from cleanrl_lago.utils.launch import REPO, run_training

SCRIPTS = {
    "metaworld": (
        REPO / "cleanrl_lago" / "ppo_lago_metaworld.py",
        ["--num-steps", "512", "--num-minibatches", "8"],
    ),
    "clevr": (REPO / "cleanrl_lago" / "ppo_lago_clevr.py", ["--num-envs", "8", "--num-steps", "128"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", choices=sorted(SCRIPTS), default="metaworld")
    parser.add_argument(
        "--prior", default=None, help="prior for the LaGO run (default: the script's default)"
    )
    parser.add_argument("--kl-coef", default="0.05")
    parser.add_argument("--total-timesteps", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (vanilla, LaGO)")
    args, lago_extra = parser.parse_known_args()
    script, budget = SCRIPTS[args.script]
    common = [
        *budget,
        "--total-timesteps",
        str(args.total_timesteps),
        "--seed",
        "1",
        "--checkpoint-every",
        "0",
    ]
    prior = ["--prior", args.prior] if args.prior else []
    lago_flags = ["--kl-coef", args.kl_coef, *prior, *lago_extra]
    runs = {"vanilla": [], "lago": []}
    print(f"{script.name}, {args.total_timesteps} env steps, seed 1, {args.repeats} pairs of runs")
    for _ in range(args.repeats):
        for name, flags in (("vanilla", ["--kl-coef", "0"]), ("lago", lago_flags)):
            scalars, mib, wall = run_training(script, [*common, *flags])
            runs[name].append((scalars["charts/SPS"], mib))
            print(
                f"  {name:8s} {scalars['charts/SPS']:6.0f} SPS, peak RSS {mib:5.0f} MiB, {wall:.0f} s",
                flush=True,
            )
    sps = {name: statistics.median(s for s, _ in r) for name, r in runs.items()}
    peak = {name: max(m for _, m in r) for name, r in runs.items()}
    print(f"vanilla (--kl-coef 0): median {sps['vanilla']:6.0f} SPS, peak RSS {peak['vanilla']:5.0f} MiB")
    print(f"LaGO ({' '.join(lago_flags)}): median {sps['lago']:6.0f} SPS, peak RSS {peak['lago']:5.0f} MiB")
    print(f"ratio LaGO SPS / vanilla SPS (medians): {sps['lago'] / sps['vanilla']:.2f}")


if __name__ == "__main__":
    main()
