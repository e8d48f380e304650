# docs and experiment results can be found at docs/rl-algorithms/ppo_lago.md
"""PPO guided by a language-model prior (LaGO) on CLEVR-Robot (40 push actions): CleanRL's ppo.py with one change,
fenced by ``# LaGO``: the policy loss gains ``kl_coef * KL(pi(.|s) || prior(.|s, instruction))``, exact for
categoricals, the frozen prior run once per collected state. Other departures: docs/rl-algorithms/ppo_lago.md."""

import os
import random
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from priors import DEFAULT_PRIORS, Quantization, load_prior
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.utils import monitoring, runs
from cleanrl_lago.utils.cli import cli


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=False`"""
    cuda: bool = True
    """if toggled, cuda will be enabled by default"""
    track: bool = False
    """if toggled, this experiment will be tracked with Weights and Biases"""
    wandb_project_name: str = "cleanrl-lago"
    """the wandb's project name"""
    wandb_entity: str | None = None
    """the entity (team) of wandb's project"""
    capture_video: bool = False
    """whether to capture videos of the agent performances (check out `videos` folder)"""
    save_model: bool = False
    """whether to save the agent into `runs/{run_name}` and evaluate it"""
    upload_model: bool = False
    """whether to upload the saved agent to the Hugging Face Hub"""
    hf_entity: str = ""
    """the user or org name of the model repository on the Hugging Face Hub"""

    # Algorithm specific arguments
    env_id: str = "CLEVR-Robot-v0"
    """the id of the environment"""
    instruction_split: Literal["train", "validation", "test", "heldout"] = "train"
    """which phrasings of the goals the environment gives during training"""
    total_timesteps: int = 500_000
    """total timesteps of the experiments"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    num_envs: int = 8
    """the number of parallel game environments"""
    num_steps: int = 128
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """Toggle learning rate annealing for policy and value networks"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """Toggles advantages normalization"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """Toggles whether or not to use a clipped loss for the value function, as per the paper."""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = None
    """the target KL divergence threshold"""
    eval_episodes: int = 50
    """episodes per instruction split when evaluating the saved agent"""
    eval_greedy: bool = True
    """evaluate with argmax actions (`--no-eval-greedy`: sample from the policy, as CleanRL's ppo_eval does)"""
    checkpoint_every: int = 10
    """write a resumable checkpoint every this many iterations (0: only at the end or on interruption)"""
    resume: str | None = None
    """a run folder `runs/{run_name}` whose checkpoint to resume from"""
    init_model: str | None = None
    """start from a saved agent's weights, e.g. the prior cloned into the actor by `python -m cleanrl_lago.kickstart`"""

    # LaGO: prior arguments
    prior: str = DEFAULT_PRIORS["CLEVR-Robot-v0"]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a prior shipped with cleanrl-lago"""
    kl_coef: float = 0.05
    """coefficient of KL(pi || prior) in the policy loss; 0 is vanilla PPO (the prior is not loaded)"""
    kl_schedule: Literal["constant", "linear", "auto"] = "constant"
    """constant; linear from `kl-coef` to 0 over training (as `--anneal-lr`); or auto-tuned toward `kl-target`"""
    kl_target: float = 0.5
    """the KL(pi || prior) in nats that `--kl-schedule auto` steers toward"""
    kl_coef_lr: float = 1e-2
    """the learning rate of log(kl_coef), for `--kl-schedule auto`"""
    prior_quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the prior's own; `none` is fp32)"""
    prior_batch_size: int = 1024
    """states per forward pass of the prior"""
    # end LaGO

    # to be filled in runtime
    batch_size: int = 0
    """the batch size (computed in runtime)"""
    minibatch_size: int = 0
    """the mini-batch size (computed in runtime)"""
    num_iterations: int = 0
    """the number of iterations (computed in runtime)"""


def make_env(env_id, idx, capture_video, run_name, instruction_split):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array", instruction_split=instruction_split)
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id, instruction_split=instruction_split)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        return env

    return thunk


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, n_actions), std=0.01),
        )

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


# LaGO
def categorical_kl(logits_p, logits_q):
    """Exact KL(p || q) between categoricals given by logits, per row."""
    log_p, log_q = torch.log_softmax(logits_p, dim=-1), torch.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


# end LaGO


if __name__ == "__main__":
    args = cli(Args)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = args.total_timesteps // args.batch_size
    checkpoint = runs.load_checkpoint(args.resume, args, same=("num_envs", "num_steps")) if args.resume else None
    run_name = checkpoint["run_name"] if checkpoint else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    if args.track:
        import wandb

        wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            sync_tensorboard=True,
            config=vars(args),
            name=run_name,
            monitor_gym=True,
            save_code=True,
            id=run_name,
            resume="allow",
        )
    # A resumed run drops whatever the interrupted one logged after its checkpoint.
    writer = SummaryWriter(f"runs/{run_name}", purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
    )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    # env setup
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name, args.instruction_split) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete action space is supported"
    obs_dim, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n

    # LaGO: load the frozen prior (checked against the env's spaces before any training)
    use_prior = args.kl_coef > 0 or args.kl_schedule != "constant"
    if use_prior:
        prior = load_prior(
            args.prior,
            env_id=args.env_id,
            expected_observation_space=envs.single_observation_space,
            expected_action_space=envs.single_action_space,
            device=device,
            quantization=args.prior_quantization,
        )
        print(f"prior: {args.prior} ({prior.config.describe()})")
        log_kl_coef = torch.tensor(np.log(max(args.kl_coef, 1e-8)), device=device, requires_grad=True)
        kl_coef_optimizer = optim.Adam([log_kl_coef], lr=args.kl_coef_lr)
    # end LaGO

    agent = Agent(obs_dim, n_actions).to(device)
    runs.load_weights(agent, args.init_model, device)  # no-op without --init-model
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # ALGO Logic: Storage setup
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim)).to(device)
    actions = torch.zeros((args.num_steps, args.num_envs)).to(device)
    logprobs = torch.zeros((args.num_steps, args.num_envs)).to(device)
    rewards = torch.zeros((args.num_steps, args.num_envs)).to(device)
    dones = torch.zeros((args.num_steps, args.num_envs)).to(device)
    values = torch.zeros((args.num_steps, args.num_envs)).to(device)
    instructions = np.empty((args.num_steps, args.num_envs), dtype=object)  # each state's instruction  # LaGO

    # TRY NOT TO MODIFY: start the game
    global_step = 0
    start_time = time.time()
    next_obs, infos = envs.reset(seed=args.seed)
    next_obs = torch.Tensor(next_obs).to(device)
    next_done = torch.zeros(args.num_envs).to(device)
    next_instructions = infos["instruction"]  # LaGO
    episodes, start_iteration = monitoring.EpisodeStats(args.num_envs), 1
    checkpointed = dict(agent=agent, optimizer=optimizer, envs=envs, episodes=episodes)
    if use_prior:  # LaGO
        checkpointed.update(log_kl_coef=log_kl_coef, kl_coef_optimizer=kl_coef_optimizer)  # LaGO
    if checkpoint:
        global_step, start_iteration = runs.restore(checkpoint, **checkpointed)
        next_obs, next_done = (x.to(device) for x in checkpoint["carry"])
        next_instructions = np.array([env.unwrapped.instruction for env in envs.envs], dtype=object)  # LaGO
    start_step = global_step
    stop, progress = runs.StopFlag(), monitoring.Progress(args.total_timesteps, global_step)

    for iteration in range(start_iteration, args.num_iterations + 1):
        iteration_start = time.time()
        # Annealing the rate if instructed to do so.
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            lrnow = frac * args.learning_rate
            optimizer.param_groups[0]["lr"] = lrnow

        episode_successes = []
        for step in range(0, args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            dones[step] = next_done
            instructions[step] = next_instructions  # LaGO

            # ALGO LOGIC: action logic
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            # TRY NOT TO MODIFY: execute the game and log data.
            next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            next_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.tensor(reward).to(device).view(-1)
            next_obs, next_done = torch.Tensor(next_obs).to(device), torch.Tensor(next_done).to(device)
            next_instructions = infos["instruction"]  # LaGO

            for episodic_return, episodic_length, success in episodes.finished(infos):
                print(f"global_step={global_step}, episodic_return={episodic_return}")
                writer.add_scalar("charts/episodic_return", episodic_return, global_step)
                writer.add_scalar("charts/episodic_length", episodic_length, global_step)
                episode_successes.append(success)
        if episode_successes:
            writer.add_scalar("charts/success_rate", np.mean(episode_successes), global_step)

        # LaGO: the frozen prior's logits for every collected state, once, in batches
        if use_prior:
            prior_start = time.time()
            prior_logits = prior.predict(obs.reshape(-1, obs_dim), instructions.reshape(-1).tolist(), args.prior_batch_size)
            prior_time = time.time() - prior_start
            kl_frac = 1.0 - (iteration - 1.0) / args.num_iterations if args.kl_schedule == "linear" else 1.0
            kl_coef = log_kl_coef.exp().item() if args.kl_schedule == "auto" else kl_frac * args.kl_coef
        # end LaGO

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards).to(device)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        # flatten the batch
        b_obs = obs.reshape((-1,) + envs.single_observation_space.shape)
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        # Optimizing the policy and value network
        b_inds = np.arange(args.batch_size)
        clipfracs = []
        for epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)
            for start in range(0, args.batch_size, args.minibatch_size):
                end = start + args.minibatch_size
                mb_inds = b_inds[start:end]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions.long()[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    # calculate approx_kl http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                # Policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds],
                        -args.clip_coef,
                        args.clip_coef,
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
                    v_loss = 0.5 * v_loss_max.mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                # LaGO: exact KL(pi || prior) between categoricals, added to the policy loss
                if use_prior:
                    prior_kl = categorical_kl(agent.actor(b_obs[mb_inds]), prior_logits[mb_inds]).mean()
                    loss = loss + kl_coef * prior_kl
                # end LaGO

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        # LaGO: auto-tuned coefficient, as SAC tunes its temperature: up when KL > target
        if use_prior and args.kl_schedule == "auto":
            kl_coef_loss = -log_kl_coef * (prior_kl.detach() - args.kl_target)
            kl_coef_optimizer.zero_grad()
            kl_coef_loss.backward()
            kl_coef_optimizer.step()
        # end LaGO

        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        # TRY NOT TO MODIFY: record rewards for plotting purposes
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        # LaGO
        if use_prior:
            writer.add_scalar("losses/prior_kl", prior_kl.item(), global_step)
            writer.add_scalar("charts/kl_coef", kl_coef, global_step)
            writer.add_scalar("charts/prior_time_fraction", prior_time / (time.time() - iteration_start), global_step)
        # end LaGO
        print("SPS:", int((global_step - start_step) / (time.time() - start_time)))
        writer.add_scalar("charts/SPS", int((global_step - start_step) / (time.time() - start_time)), global_step)
        progress.update(global_step, np.mean(episode_successes) if episode_successes else None)

        if stop or iteration == args.num_iterations or (args.checkpoint_every and iteration % args.checkpoint_every == 0):
            runs.save_checkpoint(run_name, args, iteration, global_step, carry=(next_obs, next_done), **checkpointed)
        if stop:
            stop.exit(f"runs/{run_name}", f"iteration {iteration}")
    progress.close()

    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.cleanrl_model"
        from cleanrl_lago.utils.evals import evaluate_ppo_clevr, save_agent

        save_agent(model_path, args, agent=agent.state_dict(), env_id=args.env_id, obs_dim=obs_dim, n_actions=int(n_actions))
        print(f"model saved to {model_path}")
        metrics = {}
        for split in ("train", "heldout"):
            episodic_returns, successes = evaluate_ppo_clevr(
                model_path, make_env, args.env_id, args.eval_episodes, f"{run_name}-eval-{split}", Agent, device,
                args.capture_video, seed=args.seed + 10_000, split=split, greedy=args.eval_greedy,
            )  # fmt: skip
            for idx, episodic_return in enumerate(episodic_returns):
                writer.add_scalar(f"eval/episodic_return_{split}", episodic_return, idx)
            writer.add_scalar(f"eval/success_rate_{split}", np.mean(successes), global_step)
            print(f"eval ({split} phrasings): success rate {np.mean(successes):.3f} over {len(successes)} episodes")
            metrics[f"eval/success_rate_{split}"] = round(float(np.mean(successes)), 4)

        if args.upload_model:
            from cleanrl_lago.utils.huggingface import push_agent_to_hub

            repo_name = f"{args.env_id}-{args.exp_name}-seed{args.seed}"
            repo_id = f"{args.hf_entity}/{repo_name}" if args.hf_entity else repo_name
            prior_id = args.prior if use_prior else None  # LaGO
            push_agent_to_hub(args, repo_id, model_path, __file__, writer, f"videos/{run_name}-eval-train", metrics, prior_id)

    envs.close()
    writer.close()
