"""Clone a CLEVR-Robot prior into a PPO agent's actor: the kickstarting (jump-start) baseline.

    python -m cleanrl_lago.kickstart --output runs/kickstart.cleanrl_model
    python cleanrl_lago/ppo_lago_clevr.py --init-model runs/kickstart.cleanrl_model --kl-coef 0

The baseline a reader asks LaGO to beat: the same prior, used once before RL instead of in the loss. The
prior acts alone (sampled pushes) in ``--num-envs`` CLEVR-Robot envs for ``--states`` states, with the
``--instruction-split`` phrasings. The actor of ``ppo_lago_clevr.Agent``, which reads the observation (the
goal's encoding included) and never the instruction, is then fitted to the prior's action distribution in
those states: Adam on KL(prior || actor) (behaviour cloning of the whole distribution), ``--epochs``
passes in minibatches of ``--batch-size``. The critic keeps its initialisation. A tenth of the states is
held out; the held-out KL and how often actor and prior agree on the likeliest push are printed and saved
in the agent file (``kickstart``), which ``ppo_lago_clevr.py --init-model`` and the evaluation read as
any saved agent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from priors import DEFAULT_PRIORS, load_prior

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.ppo_lago_clevr import Agent
from cleanrl_lago.utils.cli import cli
from cleanrl_lago.utils.evals import save_agent

ENV_ID = "CLEVR-Robot-v0"


@dataclass
class Args:
    output: str
    """the agent file to write (atomically), e.g. runs/kickstart.cleanrl_model"""
    prior: str = DEFAULT_PRIORS[ENV_ID]
    """the prior to clone: a folder, a Hugging Face Hub repo id, or the name of a shipped prior"""
    instruction_split: str = "train"
    """the phrasings the prior reads while it acts (train, validation, test; heldout = test)"""
    states: int = 20_480
    """states the prior visits (and the actor is fitted on); a tenth is held out"""
    num_envs: int = 8
    """envs the prior acts in at once"""
    epochs: int = 20
    """passes over the fitted states"""
    batch_size: int = 256
    """states per gradient step"""
    learning_rate: float = 1e-3
    """Adam's learning rate for the actor"""
    seed: int = 1
    """seed of the envs, the prior's sampled pushes, the actor's initialisation and the minibatches"""


@dataclass
class Fit:
    heldout_kl: float  # KL(prior || actor) on the held-out states, nats
    heldout_agreement: float  # share of held-out states where actor and prior pick the same likeliest push
    initial_heldout_kl: float  # the same KL before fitting


def prior_states(prior, args: Args) -> tuple[np.ndarray, list[str]]:
    """The observations the prior visits acting alone (sampled), and the instruction of each."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(ENV_ID, instruction_split=args.instruction_split) for _ in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs, infos = envs.reset(seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    observations, instructions = [], []
    for _ in range(args.states // args.num_envs):
        observations.append(obs)
        instructions += list(infos["instruction"])
        with torch.no_grad():
            probs = prior(obs, list(infos["instruction"])).float().softmax(-1)
        actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1).numpy()
        obs, _, _, _, infos = envs.step(actions)
    envs.close()
    return np.concatenate(observations), instructions


def kl_to_actor(prior_log_probs: torch.Tensor, actor_logits: torch.Tensor) -> torch.Tensor:
    """KL(prior || actor) per row, from the prior's log-probabilities and the actor's logits."""
    return (prior_log_probs.exp() * (prior_log_probs - actor_logits.log_softmax(-1))).sum(-1)


def fit_actor(agent: Agent, obs: torch.Tensor, prior_logits: torch.Tensor, args: Args) -> Fit:
    """Fit ``agent.actor`` to the prior's distributions; the last tenth of a seeded shuffle is held out."""
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(obs))
    held_out, fitted = order[: len(obs) // 10], order[len(obs) // 10 :]
    target = prior_logits.float().log_softmax(-1)

    def heldout_kl() -> float:
        with torch.no_grad():
            return kl_to_actor(target[held_out], agent.actor(obs[held_out])).mean().item()

    initial = heldout_kl()
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=args.learning_rate)
    for _ in range(args.epochs):
        rng.shuffle(fitted)
        for start in range(0, len(fitted), args.batch_size):
            batch = fitted[start : start + args.batch_size]
            loss = kl_to_actor(target[batch], agent.actor(obs[batch])).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        agree = (agent.actor(obs[held_out]).argmax(-1) == target[held_out].argmax(-1)).float().mean().item()
    return Fit(heldout_kl(), agree, initial)


def main(argv: list[str] | None = None) -> Fit:
    args = cli(Args, args=argv, description=__doc__.splitlines()[0])
    if args.num_envs < 1 or args.states < 10 * args.num_envs:
        raise ValueError(f"--states {args.states} with --num-envs {args.num_envs}: give at least 10 states per env")
    if args.epochs < 1 or args.batch_size < 1 or not args.learning_rate > 0:
        raise ValueError("--epochs, --batch-size and --learning-rate must be positive")
    env = gym.make(ENV_ID)
    prior = load_prior(
        args.prior,
        env_id=ENV_ID,
        expected_observation_space=env.observation_space,
        expected_action_space=env.action_space,
        device="cpu",
    )
    obs_np, instructions = prior_states(prior, args)
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    prior_logits = prior.predict(obs_np, instructions)
    torch.manual_seed(args.seed)
    agent = Agent(env.observation_space.shape[0], int(env.action_space.n))
    fit = fit_actor(agent, obs, prior_logits, args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_agent(
        args.output, args, agent=agent.state_dict(), env_id=ENV_ID, obs_dim=env.observation_space.shape[0],
        n_actions=int(env.action_space.n), kickstart=asdict(fit),
    )  # fmt: skip
    print(
        f"cloned {args.prior} into the actor from {len(obs)} states: held-out KL(prior || actor) "
        f"{fit.initial_heldout_kl:.3f} -> {fit.heldout_kl:.3f} nats, same likeliest push in "
        f"{fit.heldout_agreement:.1%} of held-out states; wrote {args.output}"
    )
    return fit


if __name__ == "__main__":
    main()
