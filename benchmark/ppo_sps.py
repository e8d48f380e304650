"""SPS of the PPO scripts with the prior against ``--kl-coef 0``, and peak memory, in one run.

    python benchmark/ppo_sps.py                      # ppo_lago_metaworld.py, the shipped default prior
    python benchmark/ppo_sps.py --script clevr --prior clevr-robot-smollm2
    python benchmark/ppo_sps.py --prior-quantization bf16   # other options go to the LaGO run

Both runs use the same budget and seed, one after the other on the same machine; the figure
printed last is LaGO SPS / vanilla SPS. SPS is the script's own ``charts/SPS`` at the end of
training (env steps per second of wall time, the prior included); peak memory is the maximum
resident set size of each run's process.
"""

import argparse

from script_runs import REPO, run_training

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
    # Vanilla first: RUSAGE_CHILDREN is a running maximum, so the LaGO peak (larger) is read second.
    vanilla, vanilla_mib, vanilla_wall = run_training(script, [*common, "--kl-coef", "0"])
    lago, lago_mib, lago_wall = run_training(
        script, [*common, "--kl-coef", args.kl_coef, *prior, *lago_extra]
    )
    vanilla_sps, lago_sps = vanilla["charts/SPS"], lago["charts/SPS"]
    print(f"{script.name}, {args.total_timesteps} env steps, seed 1")
    print(
        f"vanilla (--kl-coef 0):   {vanilla_sps:8.0f} SPS, peak RSS {vanilla_mib:7.0f} MiB, {vanilla_wall:.0f} s"
    )
    print(
        f"LaGO (--kl-coef {args.kl_coef}{''.join(' ' + a for a in lago_extra)}): {lago_sps:8.0f} SPS, peak RSS {lago_mib:7.0f} MiB, {lago_wall:.0f} s"
    )
    print(f"ratio LaGO SPS / vanilla SPS: {lago_sps / vanilla_sps:.2f}")


if __name__ == "__main__":
    main()
