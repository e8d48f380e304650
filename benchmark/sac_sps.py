"""SPS of sac_lago.py with the prior against ``--kl-coef 0``, and peak memory, in one run.

    python benchmark/sac_sps.py                                  # reach-v3, the shipped default prior
    python benchmark/sac_sps.py --prior path/to/a/saved/prior    # any folder written by priors.save_prior

Both runs use the same budget and seed, one after the other on the same machine; the figure
printed last is LaGO SPS / vanilla SPS. SPS is the script's own ``charts/SPS`` at the end of
training (env steps per second of wall time, gradient updates and the prior included), so the
budget should reach well past ``--learning-starts``. LaGO runs twice: with the prior inline
(``--no-prior-async``) and in its own thread (the default); ``charts/prior_time_fraction`` is the
share of wall time the training loop waited for the prior. Peak memory is the maximum resident set
size of each run (a running maximum: the runs go in order of size).
"""

import argparse

from cleanrl_lago.utils.launch import REPO, run_training
from priors import DEFAULT_PRIORS

SCRIPT = REPO / "cleanrl_lago" / "sac_lago.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prior",
        default=DEFAULT_PRIORS["Meta-World/MT10"],
        help="prior for the LaGO run: a shipped prior's name, a folder or a Hub repo id",
    )
    parser.add_argument("--kl-coef", default="0.1")
    parser.add_argument("--env-id", default="reach-v3")
    parser.add_argument("--total-timesteps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    args = parser.parse_args()
    common = ["--env-id", args.env_id, "--total-timesteps", str(args.total_timesteps), "--seed", "1"]
    common += ["--learning-starts", str(args.learning_starts), "--buffer-size", str(args.buffer_size)]
    common += ["--checkpoint-every", "0"]
    vanilla, vanilla_mib, vanilla_wall = run_training(SCRIPT, [*common, "--kl-coef", "0"])
    lago_args = [*common, "--kl-coef", args.kl_coef, "--prior", args.prior]
    inline, inline_mib, inline_wall = run_training(SCRIPT, [*lago_args, "--no-prior-async"])
    lago, lago_mib, lago_wall = run_training(SCRIPT, lago_args)
    print(
        f"{SCRIPT.name} on {args.env_id}, {args.total_timesteps} env steps (learning from {args.learning_starts}), seed 1"
    )
    for name, scalars, mib, wall in (
        ("vanilla (--kl-coef 0)", vanilla, vanilla_mib, vanilla_wall),
        (
            f"LaGO (--kl-coef {args.kl_coef}), prior inline (--no-prior-async)",
            inline,
            inline_mib,
            inline_wall,
        ),
        (f"LaGO (--kl-coef {args.kl_coef}), prior in its thread (default)", lago, lago_mib, lago_wall),
    ):
        fraction = scalars.get("charts/prior_time_fraction")
        waited = "" if fraction is None else f", waiting for the prior {fraction:.1%} of wall time"
        print(f"{name:58s} {scalars['charts/SPS']:6.0f} SPS, peak RSS {mib:6.0f} MiB, {wall:.0f} s" + waited)
    print(f"ratio LaGO SPS / vanilla SPS, prior inline: {inline['charts/SPS'] / vanilla['charts/SPS']:.2f}")
    print(f"ratio LaGO SPS / vanilla SPS (default):     {lago['charts/SPS'] / vanilla['charts/SPS']:.2f}")


if __name__ == "__main__":
    main()
