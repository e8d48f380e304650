"""Train a LaGO prior on demonstrations of CLEVR-Robot or Meta-World (stage 1 of LaGO).

    python -m cleanrl_lago.train_prior --dataset cleanrl-lago/clevr-robot/expert-v0 --output my-prior
    python -m cleanrl_lago.train_prior --dataset cleanrl-lago/metaworld-mt10/expert-v0 --kind mlp --output mlp-prior

The training is :func:`priors.training.train`; this command adds the environment the demonstrations
come from (read from the dataset's metadata): the env id and tasks the prior records, and the envs
it is evaluated in as a policy at the end (:mod:`cleanrl_lago.envs.prior_envs`). Until this
version the same options ran as ``python -m priors.training``. See docs/priors.md.
"""

from __future__ import annotations

import logging
import shlex
import sys

from priors import Prior
from priors.datasets import dataset_metadata
from priors.training import TrainSettings, train

from cleanrl_lago.demonstrations import collection_command
from cleanrl_lago.envs.prior_envs import prior_environment
from cleanrl_lago.utils.cli import cli

COMMAND = "python -m cleanrl_lago.train_prior"


def main(argv: list[str] | None = None) -> Prior:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = cli(TrainSettings, args=argv, description=__doc__.splitlines()[0])
    collect = collection_command(args.dataset)
    meta = dataset_metadata(args.dataset, collect_command=collect)
    tasks = [t for t in meta["tasks"] if t not in args.exclude_tasks]  # train() checks the exclusions
    env = prior_environment(meta["env_id"], tasks or meta["tasks"])
    prior = train(
        args,
        env_id=env.env_id,
        tasks=env.tasks,
        make_env=env.make_env,
        command=f"{COMMAND} {shlex.join(argv)}",
        collect_command=collect,
    )
    print(f"prior written to {args.output}: {prior.config.provenance.metrics}")
    return prior


if __name__ == "__main__":
    main()
