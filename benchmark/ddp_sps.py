"""SPS of data-parallel PPO on 2 CPU processes (torchrun, gloo) against 1 process, in one run.

ppo_lago_metaworld_multigpu.py runs on the 2 processes, ppo_lago_metaworld.py on the 1:

    python benchmark/ddp_sps.py                 # the shipped default prior
    python benchmark/ddp_sps.py --kl-coef 0     # vanilla PPO

Both runs collect the same global batch with the same seed, one after the other on the same machine:
``torchrun --nproc_per_node 2`` with ``--envs / 2`` envs per process, then the single-process script
with ``--envs`` envs, which trains the same policy (see docs/distributed.md). SPS is the script's own
``charts/SPS`` at the end of training (env steps of all processes per second of wall time, the prior
included); the figure printed last is 2-process SPS / 1-process SPS. torchrun gives each process one
torch thread unless ``OMP_NUM_THREADS`` is set; set it (e.g. to 1) to give the single process the same.
CLEVR-Robot has no data-parallel variant (its env steps are cheap; see docs/distributed.md).
"""

import argparse
import os

from cleanrl_lago.utils.launch import REPO, run_training

SINGLE = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
MULTIGPU = REPO / "cleanrl_lago" / "ppo_lago_metaworld_multigpu.py"
BUDGET = ["--num-steps", "512", "--num-minibatches", "8"]
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=2, help="envs of all processes together (even)")
    parser.add_argument("--prior", default=None, help="the prior (default: the script's default)")
    parser.add_argument("--kl-coef", default="0.05", help="0: vanilla PPO, no prior")
    parser.add_argument("--total-timesteps", type=int, default=4096)
    args = parser.parse_args()
    if args.envs % 2:
        parser.error("--envs must be even: each of the 2 processes steps half of them")
    common = [*BUDGET, "--total-timesteps", str(args.total_timesteps), "--seed", "1"]
    common += ["--checkpoint-every", "0", "--kl-coef", args.kl_coef]
    common += ["--prior", args.prior] if args.prior else []
    two, two_mib, two_wall = run_training(MULTIGPU, [*common, "--num-envs", str(args.envs // 2)], TORCHRUN)
    one, one_mib, one_wall = run_training(SINGLE, [*common, "--num-envs", str(args.envs)])
    print(
        f"--kl-coef {args.kl_coef}, {args.envs} envs in all, {args.total_timesteps} env steps, "
        f"seed 1, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        f"1 process ({SINGLE.name}):   {one['charts/SPS']:8.0f} SPS, peak RSS {one_mib:7.0f} MiB, {one_wall:.0f} s"
    )
    print(
        f"2 processes ({MULTIGPU.name}): {two['charts/SPS']:8.0f} SPS, peak RSS {two_mib:7.0f} MiB per process, "
        f"{two_wall:.0f} s"
    )
    print(f"ratio 2-process SPS / 1-process SPS: {two['charts/SPS'] / one['charts/SPS']:.2f}")


if __name__ == "__main__":
    main()
