# docs and experiment results can be found at docs/rl-algorithms/sac_lago.md
"""SAC guided by a language-model prior (LaGO) on Meta-World v3: CleanRL's sac_continuous_action.py with one change,
fenced by ``# LaGO``, as in SPiRL: the temperature is 0 and ``kl_coef * KL(pi || prior)`` (estimate ``log pi(a|s) - log
prior(a|s, instruction)``) joins the actor loss and the soft target; ``kl_coef`` is fixed or tuned toward ``--kl-target``.
The replay buffer calls the frozen prior (``prior_params_at``) on stored next observations, in batches, in a background
thread. ``--kl-coef 0`` is vanilla SAC. Other departures, none in the losses: docs/rl-algorithms/sac_lago.md."""

import os
import random
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from priors import DEFAULT_PRIORS, Quantization, load_prior
from torch.utils.tensorboard import SummaryWriter

from cleanrl_lago.envs.metaworld_tasks import env_tasks, make_metaworld_env, policy_input, task_instructions, task_one_hot
from cleanrl_lago.utils import monitoring, runs
from cleanrl_lago.utils.buffers import PriorReplayBuffer, ReplayBuffer
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
    env_id: str = "reach-v3"
    """a Meta-World v3 task (e.g. `push-v3`), or `MT10` for the ten MT10 tasks side by side"""
    instruction_split: Literal["train", "validation", "test", "heldout"] = "train"
    """which phrasings of the task the prior is given during training"""
    max_episode_steps: int = 500
    """the time limit of an episode (Meta-World's default: 500)"""
    total_timesteps: int = 1_000_000
    """total timesteps of the experiments"""
    num_envs: int = 1
    """the number of parallel game environments (a multiple of 10 for MT10); one gradient step per vector step"""
    buffer_size: int = 1_000_000
    """the replay memory buffer size"""
    gamma: float = 0.99
    """the discount factor gamma"""
    tau: float = 0.005
    """target smoothing coefficient (default: 0.005)"""
    batch_size: int = 256
    """the batch size of sample from the replay memory"""
    learning_starts: int = 5000
    """timestep to start learning (actions are uniformly random before it)"""
    policy_lr: float = 3e-4
    """the learning rate of the policy network optimizer"""
    q_lr: float = 1e-3
    """the learning rate of the Q network network optimizer (and of the tuned coefficient)"""
    policy_frequency: int = 2
    """the frequency of training policy (delayed)"""
    target_network_frequency: int = 1  # Denis Yarats' implementation delays this by 2.
    """the frequency of updates for the target nerworks"""
    alpha: float = 0.2
    """Entropy regularization coefficient."""
    autotune: bool = True
    """automatic tuning of the entropy coefficient (with a prior: of `kl-coef`, toward `kl-target`)"""
    eval_episodes: int = 10
    """episodes when evaluating the saved agent"""
    checkpoint_every: int = 100_000
    """write a resumable checkpoint (with the replay buffer) every this many env steps (0: at the end only)"""
    resume: str | None = None
    """a run folder `runs/{run_name}` whose checkpoint to resume from"""

    # LaGO: prior arguments
    prior: str = DEFAULT_PRIORS["Meta-World/MT10"]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a prior shipped with cleanrl-lago"""
    kl_coef: float = 0.1
    """coefficient of KL(pi || prior), in place of the entropy's (initial value with `--autotune`); 0 is vanilla SAC"""
    kl_target: float = 1.0
    """the KL(pi || prior) in nats that `--autotune` steers the coefficient toward"""
    prior_quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the one saved with the prior); none is fp32"""
    prior_allow_unseen_tasks: bool = False
    """let the prior guide tasks it was not trained on (it warns; a transfer experiment), instead of refusing"""
    prior_batch_size: int = 256
    """transitions per forward pass of the prior (they wait until this many have arrived, or learning starts)"""
    prior_async: bool = True
    """run the prior in a background thread while the agent steps and learns; `--no-prior-async`: inline"""
    # end LaGO


def make_env(task, seed, idx, capture_video, run_name, max_episode_steps):
    def thunk():
        render_mode = "rgb_array" if capture_video and idx == 0 else None
        env = make_metaworld_env(task, seed=seed, render_mode=render_mode, max_episode_steps=max_episode_steps)
        if render_mode:
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        return env  # episode statistics: Meta-World records them itself

    return thunk


# ALGO LOGIC: initialize agent here:
class SoftQNetwork(nn.Module):
    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim + act_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, x, a):
        x = torch.cat([x, a], 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


LOG_STD_MAX = 2
LOG_STD_MIN = -5


class Actor(nn.Module):
    def __init__(self, obs_dim, action_space):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mean = nn.Linear(256, np.prod(action_space.shape))
        self.fc_logstd = nn.Linear(256, np.prod(action_space.shape))
        # action rescaling
        self.register_buffer(
            "action_scale",
            torch.tensor(
                (action_space.high - action_space.low) / 2.0,
                dtype=torch.float32,
            ),
        )
        self.register_buffer(
            "action_bias",
            torch.tensor(
                (action_space.high + action_space.low) / 2.0,
                dtype=torch.float32,
            ),
        )

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        mean = self.fc_mean(x)
        log_std = self.fc_logstd(x)
        log_std = torch.tanh(log_std)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)  # From SpinUp / Denis Yarats

        return mean, log_std

    def get_action(self, x):
        mean, log_std = self(x)
        std = log_std.exp()
        normal = torch.distributions.Normal(mean, std)
        x_t = normal.rsample()  # for reparameterization trick (mean + std * N(0,1))
        y_t = torch.tanh(x_t)
        action = y_t * self.action_scale + self.action_bias
        log_prob = normal.log_prob(x_t)
        # Enforcing Action Bound
        log_prob -= torch.log(self.action_scale * (1 - y_t.pow(2)) + 1e-6)
        log_prob = log_prob.sum(1, keepdim=True)
        mean = torch.tanh(mean) * self.action_scale + self.action_bias
        return action, log_prob, mean


# LaGO
def prior_kl_estimate(log_pi, action, prior_mean, prior_log_std):
    """Single-sample estimate of KL(pi || prior), ``log pi(a|s) - log prior(a|s)`` for ``a ~ pi(.|s)``: ``log_pi`` (batch, 1)
    is the squashed density (tanh Jacobian included); the prior is a diagonal Gaussian in action units. Its mean over
    ``a ~ pi`` is KL(pi || prior restricted to the action box), >= 0 as the restricted prior has mass <= 1."""
    return log_pi - torch.distributions.Normal(prior_mean, prior_log_std.exp()).log_prob(action).sum(1, keepdim=True)


# end LaGO


if __name__ == "__main__":
    args = cli(Args)
    tasks = env_tasks(args.env_id, args.num_envs)  # fails on an unknown task before anything starts
    checkpoint = runs.load_checkpoint(args.resume, args, same=("num_envs",)) if args.resume else None
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
        [
            make_env(task, args.seed + i, i, args.capture_video, run_name, args.max_episode_steps)
            for i, task in enumerate(tasks)
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",  # MT10 tasks declare different goal bounds
    )
    assert isinstance(envs.single_action_space, gym.spaces.Box), "only continuous action space is supported"
    raw_obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    one_hot = task_one_hot(tasks)
    obs_dim = raw_obs_dim + (0 if one_hot is None else one_hot.shape[1])

    max_action = float(envs.single_action_space.high[0])

    actor = Actor(obs_dim, envs.single_action_space).to(device)
    qf1 = SoftQNetwork(obs_dim, act_dim).to(device)
    qf2 = SoftQNetwork(obs_dim, act_dim).to(device)
    qf1_target = SoftQNetwork(obs_dim, act_dim).to(device)
    qf2_target = SoftQNetwork(obs_dim, act_dim).to(device)
    qf1_target.load_state_dict(qf1.state_dict())
    qf2_target.load_state_dict(qf2.state_dict())
    q_optimizer = optim.Adam(list(qf1.parameters()) + list(qf2.parameters()), lr=args.q_lr)
    actor_optimizer = optim.Adam(list(actor.parameters()), lr=args.policy_lr)

    # LaGO: the frozen prior (checked against the env's spaces); KL(pi || prior) replaces the entropy term (alpha = 0)
    use_prior = args.kl_coef > 0
    if use_prior:
        prior = load_prior(
            args.prior,
            expected_observation_space=envs.single_observation_space,
            expected_action_space=envs.envs[0].unwrapped.action_space,
            tasks=sorted(set(tasks)),
            allow_unseen_tasks=args.prior_allow_unseen_tasks,
            device=device,
            quantization=args.prior_quantization,
        )
        print(f"prior: {args.prior} ({prior.config.describe()})")
        phrasings = [task_instructions(task, args.instruction_split) for task in tasks]  # each env keeps one phrasing
        env_instructions = np.array([p[i % len(p)] for i, p in enumerate(phrasings)], dtype=object)

        def prior_params_at(next_obs):  # rows of consecutive vector steps; the prior reads no task one-hot
            instructions = np.tile(env_instructions, len(next_obs) // args.num_envs).tolist()
            raw_next_obs = torch.as_tensor(next_obs[:, :raw_obs_dim], device=device)
            return prior.predict(raw_next_obs, instructions, args.prior_batch_size).cpu().numpy()

        tune_kl_coef, args.autotune, args.alpha = args.autotune, False, 0.0
        log_kl_coef = torch.full((1,), float(np.log(args.kl_coef)), requires_grad=True, device=device)
        kl_coef_optimizer = optim.Adam([log_kl_coef], lr=args.q_lr)
    # end LaGO

    # Automatic entropy tuning
    if args.autotune:
        target_entropy = -torch.prod(torch.Tensor(envs.single_action_space.shape).to(device)).item()
        log_alpha = torch.zeros(1, requires_grad=True, device=device)
        alpha = log_alpha.exp().item()
        a_optimizer = optim.Adam([log_alpha], lr=args.q_lr)
    else:
        alpha = args.alpha

    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    if use_prior:  # LaGO
        rb = PriorReplayBuffer(args, obs_dim, act_dim, device, prior_params_at)  # LaGO

    # TRY NOT TO MODIFY: start the game
    global_step, start_iteration = 0, 1
    start_time = time.time()
    obs, _ = envs.reset(seed=args.seed)
    obs = policy_input(obs, one_hot)
    envs.action_space.seed(args.seed)
    episodes = monitoring.EpisodeStats(args.num_envs)  # checkpoints hold the envs' state: a resume continues exactly
    checkpointed = dict(actor=actor, qf1=qf1, qf2=qf2, qf1_target=qf1_target, qf2_target=qf2_target, replay_buffer=rb)
    checkpointed.update(q_optimizer=q_optimizer, actor_optimizer=actor_optimizer, envs=envs, episodes=episodes)
    if args.autotune:
        checkpointed.update(log_alpha=log_alpha, a_optimizer=a_optimizer)
    if use_prior:  # LaGO
        checkpointed.update(log_kl_coef=log_kl_coef, kl_coef_optimizer=kl_coef_optimizer)  # LaGO
    if checkpoint:
        global_step, start_iteration = runs.restore(checkpoint, **checkpointed)
        obs = checkpoint["carry"]
        alpha = log_alpha.exp().item() if args.autotune else alpha
    kl_coef = log_kl_coef.exp().item() if use_prior and tune_kl_coef else args.kl_coef  # LaGO
    start_step, num_iterations = global_step, args.total_timesteps // args.num_envs
    stop, progress = runs.StopFlag(), monitoring.Progress(args.total_timesteps, global_step)
    for iteration in range(start_iteration, num_iterations + 1):
        global_step += args.num_envs
        # ALGO LOGIC: put action logic here
        if global_step <= args.learning_starts:
            actions = envs.action_space.sample()
        else:
            actions, _, _ = actor.get_action(torch.Tensor(obs).to(device))
            actions = actions.detach().cpu().numpy()

        # TRY NOT TO MODIFY: execute the game and log data.
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        next_obs = policy_input(next_obs, one_hot)

        # TRY NOT TO MODIFY: record rewards for plotting purposes
        episode_successes = []
        for episodic_return, episodic_length, success in episodes.finished(infos):
            print(f"global_step={global_step}, episodic_return={episodic_return}")
            writer.add_scalar("charts/episodic_return", episodic_return, global_step)
            writer.add_scalar("charts/episodic_length", episodic_length, global_step)
            episode_successes.append(success)
        if episode_successes:
            writer.add_scalar("charts/success_rate", np.mean(episode_successes), global_step)

        # TRY NOT TO MODIFY: save data to reply buffer; handle `final_obs`
        real_next_obs = next_obs.copy()
        for idx, done in enumerate(np.logical_or(terminations, truncations)):
            if done:
                real_next_obs[idx, :raw_obs_dim] = infos["final_obs"][idx]
        rb.add(obs, real_next_obs, actions, rewards, terminations, infos)

        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = next_obs

        # ALGO LOGIC: training.
        if global_step > args.learning_starts:
            data = rb.sample(args.batch_size)
            with torch.no_grad():
                next_state_actions, next_state_log_pi, _ = actor.get_action(data.next_observations)
                qf1_next_target = qf1_target(data.next_observations, next_state_actions)
                qf2_next_target = qf2_target(data.next_observations, next_state_actions)
                min_qf_next_target = torch.min(qf1_next_target, qf2_next_target) - alpha * next_state_log_pi
                # LaGO: the soft target subtracts kl_coef * KL estimate at s', with the prior's stored parameters
                if use_prior:
                    prior_mean, prior_log_std = data.prior_params.chunk(2, dim=-1)
                    next_state_kl = prior_kl_estimate(next_state_log_pi, next_state_actions, prior_mean, prior_log_std)
                    min_qf_next_target = min_qf_next_target - kl_coef * next_state_kl
                # end LaGO
                next_q_value = data.rewards.flatten() + (1 - data.dones.flatten()) * args.gamma * (min_qf_next_target).view(-1)

            qf1_a_values = qf1(data.observations, data.actions).view(-1)
            qf2_a_values = qf2(data.observations, data.actions).view(-1)
            qf1_loss = F.mse_loss(qf1_a_values, next_q_value)
            qf2_loss = F.mse_loss(qf2_a_values, next_q_value)
            qf_loss = qf1_loss + qf2_loss

            # optimize the model
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            if iteration % args.policy_frequency == 0:  # TD 3 Delayed update support
                # LaGO: the actor (and kl_coef) learn on the sampled next states, where the prior is known
                if use_prior:
                    data.observations = data.next_observations
                # end LaGO
                for _ in range(
                    args.policy_frequency
                ):  # compensate for the delay by doing 'actor_update_interval' instead of 1
                    pi, log_pi, _ = actor.get_action(data.observations)
                    qf1_pi = qf1(data.observations, pi)
                    qf2_pi = qf2(data.observations, pi)
                    min_qf_pi = torch.min(qf1_pi, qf2_pi)
                    actor_loss = ((alpha * log_pi) - min_qf_pi).mean()
                    # LaGO: the actor loss gains kl_coef * KL(pi || prior), a one-sample estimate
                    if use_prior:
                        kl = prior_kl_estimate(log_pi, pi, prior_mean, prior_log_std)
                        actor_loss = actor_loss + (kl_coef * kl).mean()
                    # end LaGO

                    actor_optimizer.zero_grad()
                    actor_loss.backward()
                    actor_optimizer.step()

                    if args.autotune:
                        with torch.no_grad():
                            _, log_pi, _ = actor.get_action(data.observations)
                        alpha_loss = (-log_alpha.exp() * (log_pi + target_entropy)).mean()

                        a_optimizer.zero_grad()
                        alpha_loss.backward()
                        a_optimizer.step()
                        alpha = log_alpha.exp().item()
                    # LaGO: kl_coef rises while this step's KL exceeds --kl-target, as the PPO scripts' auto schedule
                    if use_prior and tune_kl_coef:
                        kl_coef_loss = (-log_kl_coef * (kl.detach() - args.kl_target)).mean()
                        kl_coef_optimizer.zero_grad()
                        kl_coef_loss.backward()
                        kl_coef_optimizer.step()
                        kl_coef = log_kl_coef.exp().item()
                    # end LaGO

            # update the target networks
            if iteration % args.target_network_frequency == 0:
                for param, target_param in zip(qf1.parameters(), qf1_target.parameters(), strict=True):
                    target_param.data.copy_(args.tau * param.data + (1 - args.tau) * target_param.data)
                for param, target_param in zip(qf2.parameters(), qf2_target.parameters(), strict=True):
                    target_param.data.copy_(args.tau * param.data + (1 - args.tau) * target_param.data)

            if iteration % 100 == 0:
                writer.add_scalar("losses/qf1_values", qf1_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf2_values", qf2_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf1_loss", qf1_loss.item(), global_step)
                writer.add_scalar("losses/qf2_loss", qf2_loss.item(), global_step)
                writer.add_scalar("losses/qf_loss", qf_loss.item() / 2.0, global_step)
                writer.add_scalar("losses/actor_loss", actor_loss.item(), global_step)
                writer.add_scalar("losses/alpha", alpha, global_step)
                print("SPS:", int((global_step - start_step) / (time.time() - start_time)))
                writer.add_scalar("charts/SPS", int((global_step - start_step) / (time.time() - start_time)), global_step)
                if args.autotune:
                    writer.add_scalar("losses/alpha_loss", alpha_loss.item(), global_step)
                # LaGO
                if use_prior:
                    writer.add_scalar("losses/prior_kl", kl.mean().item(), global_step)
                    writer.add_scalar("charts/kl_coef", kl_coef, global_step)
                    if tune_kl_coef:
                        writer.add_scalar("losses/kl_coef_loss", kl_coef_loss.item(), global_step)
                    writer.add_scalar("charts/prior_time_fraction", rb.prior_time / (time.time() - start_time), global_step)
                # end LaGO
        progress.update(global_step, np.mean(episode_successes) if episode_successes else None)

        due = args.checkpoint_every and global_step % args.checkpoint_every < args.num_envs
        if stop or due or iteration == num_iterations:
            runs.save_checkpoint(run_name, args, iteration, global_step, carry=obs, **checkpointed)
        if stop:
            stop.exit(f"runs/{run_name}", f"global_step {global_step}")
    progress.close()

    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.cleanrl_model"
        from cleanrl_lago.utils.evals import evaluate_sac, save_agent

        nets = dict(actor=actor.state_dict(), qf1=qf1.state_dict(), qf2=qf2.state_dict())
        save_agent(model_path, args, **nets, tasks=tasks, obs_dim=obs_dim, act_dim=act_dim)
        print(f"model saved to {model_path}")
        episodic_returns, successes = evaluate_sac(
            model_path, make_env, args.env_id, args.eval_episodes, f"{run_name}-eval", Actor, device, args.capture_video,
            seed=args.seed + 10_000)  # fmt: skip
        for idx, episodic_return in enumerate(episodic_returns):
            writer.add_scalar("eval/episodic_return", episodic_return, idx)
        writer.add_scalar("eval/success_rate", np.mean(successes), global_step)
        print(f"eval: success rate {np.mean(successes):.3f} over {len(successes)} episodes")

        if args.upload_model:
            from cleanrl_lago.utils.huggingface import push_agent_to_hub

            repo_name = f"{args.env_id}-{args.exp_name}-seed{args.seed}"
            repo_id = f"{args.hf_entity}/{repo_name}" if args.hf_entity else repo_name
            metrics = {"eval/success_rate": round(float(np.mean(successes)), 4)}
            prior_id = args.prior if use_prior else None  # LaGO
            push_agent_to_hub(args, repo_id, model_path, __file__, writer, f"videos/{run_name}-eval", metrics, prior_id)

    if use_prior:  # LaGO
        rb.close()  # LaGO
    envs.close()
    writer.close()
