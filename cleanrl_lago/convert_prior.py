"""Run a trained prior's frozen LM at another precision, re-measured, as a new prior folder.

    python -m cleanrl_lago.convert_prior SOURCE OUTPUT --quantization bf16 [--eval-episodes 50]

``SOURCE`` is anything :func:`priors.load_prior` accepts (a folder, a shipped prior's name, a Hub
id); its demonstrations must be available (``MINARI_DATASETS_PATH``), as for training. The
conversion is :func:`priors.conversion.convert`; this command adds the envs the converted prior is
evaluated in as a policy, those of the env id and tasks its config records
(:mod:`cleanrl_lago.envs.prior_envs`). Until this version the same options ran as
``python -m priors.conversion``. See docs/priors.md.
"""

from __future__ import annotations

import logging
import shlex
import sys

from priors import Prior, PriorConfig
from priors.conversion import ConvertSettings, convert
from priors.evaluation import EnvFactory

from cleanrl_lago.envs.prior_envs import prior_environment
from cleanrl_lago.utils.cli import cli

COMMAND = "python -m cleanrl_lago.convert_prior"


def evaluation_envs(config: PriorConfig) -> EnvFactory:
    """The evaluation envs of the environment a prior's config records."""
    if config.env_id is None:
        raise ValueError("the prior records no env id: cleanrl-lago cannot tell which envs to evaluate it in")
    return prior_environment(config.env_id, config.tasks).make_env


def main(argv: list[str] | None = None) -> Prior:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = cli(ConvertSettings, args=argv, description=__doc__.splitlines()[0])
    prior = convert(args, make_env=evaluation_envs, command=f"{COMMAND} {shlex.join(argv)}")
    print(f"prior written to {args.output}: {prior.config.provenance.metrics}")
    return prior


if __name__ == "__main__":
    main()
