# docs and experiment results can be found at docs/rl-algorithms/sac_lago.md
"""SAC guided by a language-model prior (LaGO) on Meta-World v3 (continuous, 4-dim actions).

CleanRL's sac_continuous_action.py with one change, fenced by ``# LaGO`` comments, as in SPiRL:
SAC's entropy bonus becomes a KL penalty toward the frozen prior. With

    penalty(a|s) = log pi(a|s) - log prior(a|s, instruction),    a ~ pi(.|s)

the actor minimises ``kl_coef * penalty - min(Q1, Q2)`` and the soft Q target is
``r + gamma * (1 - done) * (min(Q1', Q2')(s', a') - kl_coef * penalty(a'|s'))``. ``kl_coef`` is fixed,
or (``--autotune``) tuned toward ``--kl-target`` nats as SAC tunes its temperature. ``--kl-coef 0`` is
vanilla SAC, ``penalty = log pi`` with temperature ``--alpha`` (the prior is not even loaded).

pi is a tanh-squashed Gaussian and the prior a Gaussian in action units, so KL(pi || prior) has no
closed form: ``penalty`` of one reparameterised sample is its unbiased estimate (see
``prior_kl_estimate``). The prior runs once per transition, in batches, on the transition's next
observation before the transition enters the replay buffer; its (mean, log_std) are stored there,
so the target (at a' ~ pi(.|s')) and the actor and coefficient updates (run on the sampled next
states s', valid replay states too) use them without calling the prior.
"""

import os
import random
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor  # LaGO
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import tyro
from torch.distributions.normal import Normal
from torch.utils.tensorboard import SummaryWriter

from cleanrl_lago.envs.metaworld_tasks import MT10_TASKS, check_task, make_metaworld_env, task_instructions
from cleanrl_lago.utils.huggingface import push_agent_to_hub
from priors import DEFAULT_PRIORS, Quantization, load_prior


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
    instruction_split: Literal["train", "heldout"] = "train"
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
    """without a prior: the entropy temperature (its initial value is 1 with `--autotune`)"""
    autotune: bool = True
    """automatic tuning of the coefficient: the temperature toward entropy -act_dim, or with a prior
    `kl-coef` toward `kl-target`"""
    eval_episodes: int = 10
    """episodes when evaluating the saved agent"""
    checkpoint_every: int = 100_000
    """write a resumable checkpoint (with the replay buffer) every this many env steps (0: only at the end
    or on interruption)"""
    resume: str | None = None
    """a run folder `runs/{run_name}` whose checkpoint to resume from"""

    # LaGO: prior arguments
    prior: str = DEFAULT_PRIORS["Meta-World/MT10"]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a prior shipped with cleanrl-lago"""
    kl_coef: float = 0.1
    """coefficient of the KL(pi || prior) penalty in the actor loss and the soft Q target (replacing
    SAC's entropy bonus); its initial value with `--autotune`; 0 is vanilla SAC (the prior is not loaded)"""
    kl_target: float = 1.0
    """the KL(pi || prior) in nats that `--autotune` steers the coefficient toward"""
    prior_quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the one saved with the prior, bf16 for the shipped
    ones); none is fp32: the same trained weights, slightly different outputs"""
    prior_batch_size: int = 256
    """transitions per forward pass of the prior: they wait in a staging list until this many have
    arrived (or learning starts), then enter the replay buffer with the prior's parameters"""
    prior_async: bool = True
    """run the prior in a background thread while the agent keeps stepping and learning (a staged batch
    enters the replay buffer when the next one is handed over); `--no-prior-async`: run it inline"""
    # end LaGO

    # to be filled in runtime
    num_iterations: int = 0
    """the number of vector env steps (computed in runtime)"""


def env_tasks(env_id, num_envs):
    """The task of each env: one task repeated, or the MT10 tasks in turn."""
    if env_id.lower() == "mt10":
        if num_envs % len(MT10_TASKS):
            raise ValueError(
                f"--env-id MT10 needs --num-envs a multiple of {len(MT10_TASKS)}, got {num_envs}"
            )
        return [MT10_TASKS[i % len(MT10_TASKS)] for i in range(num_envs)]
    return [check_task(env_id)] * num_envs


def make_env(task, seed, idx, capture_video, run_name, max_episode_steps):
    def thunk():
        render_mode = "rgb_array" if capture_video and idx == 0 else None
        env = make_metaworld_env(
            task, seed=seed, render_mode=render_mode, max_episode_steps=max_episode_steps
        )
        if render_mode:
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        return env  # episode statistics: Meta-World records them itself

    return thunk


def task_one_hot(tasks):
    """For MT10, the policy is told its task as a one-hot (Meta-World's MT10 convention)."""
    if len(set(tasks)) == 1:
        return None
    return np.eye(len(MT10_TASKS), dtype=np.float32)[[list(MT10_TASKS).index(t) for t in tasks]]


def policy_input(raw_obs, one_hot):
    """The networks' input: the raw observation, and the task one-hot for MT10."""
    x = np.asarray(raw_obs, dtype=np.float32)
    return x if one_hot is None else np.concatenate([x, one_hot], axis=1)


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
        act_dim = action_space.shape[0]
        self.fc1 = nn.Linear(obs_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mean = nn.Linear(256, act_dim)
        self.fc_logstd = nn.Linear(256, act_dim)
        # action rescaling
        low = torch.as_tensor(action_space.low, dtype=torch.float32)
        high = torch.as_tensor(action_space.high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        mean = self.fc_mean(x)
        log_std = torch.tanh(self.fc_logstd(x))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (
            log_std + 1
        )  # From SpinUp / Denis Yarats
        return mean, log_std

    def get_action(self, x):
        mean, log_std = self(x)
        action, log_prob = squashed_normal_sample(mean, log_std, self.action_scale, self.action_bias)
        mean = torch.tanh(mean) * self.action_scale + self.action_bias
        return action, log_prob, mean


def squashed_normal_sample(mean, log_std, action_scale, action_bias):
    """A reparameterised sample ``a = tanh(u) * scale + bias``, ``u ~ N(mean, std)``, and its log-density
    in action units: the Normal's minus the log-Jacobian of the squashing (summed over dimensions)."""
    normal = Normal(mean, log_std.exp())
    x_t = normal.rsample()  # for reparameterization trick (mean + std * N(0,1))
    y_t = torch.tanh(x_t)
    action = y_t * action_scale + action_bias
    log_prob = normal.log_prob(x_t)
    # Enforcing Action Bound
    log_prob -= torch.log(action_scale * (1 - y_t.pow(2)) + 1e-6)
    return action, log_prob.sum(1)


# LaGO
def prior_kl_estimate(log_pi, action, prior_mean, prior_log_std):
    """Single-sample estimate of KL(pi || prior): ``log pi(a|s) - log prior(a|s)`` for ``a ~ pi(.|s)``.

    ``log_pi`` must be the squashed density of ``action`` (tanh Jacobian included, as returned by
    ``squashed_normal_sample``); the prior is a diagonal Gaussian in action units whose mean is not
    squashed, evaluated at the scaled action. The mean over ``a ~ pi`` is KL(pi || prior restricted to
    the action box), which is >= 0 because the restricted prior has mass <= 1.
    """
    return log_pi - Normal(prior_mean, prior_log_std.exp()).log_prob(action).sum(-1)


# end LaGO


class ReplayBuffer:
    """A FIFO replay memory of named float32 arrays (an inline replacement for SB3's)."""

    def __init__(self, buffer_size, shapes):
        self.buffer_size = buffer_size
        self.arrays = {
            name: np.zeros((buffer_size, *shape), dtype=np.float32) for name, shape in shapes.items()
        }
        self.pos, self.size = 0, 0

    def add(self, **batch):
        """Add a batch of transitions: one array per field, with the same leading length."""
        n = len(batch["rewards"])
        rows = (self.pos + np.arange(n)) % self.buffer_size
        for name, array in self.arrays.items():
            array[rows] = np.asarray(batch[name], dtype=np.float32).reshape(n, *array.shape[1:])
        self.pos = (self.pos + n) % self.buffer_size
        self.size = min(self.size + n, self.buffer_size)

    def sample(self, batch_size, device):
        rows = np.random.randint(0, self.size, size=batch_size)
        return {name: torch.as_tensor(array[rows], device=device) for name, array in self.arrays.items()}

    def state_dict(self):
        """The filled part only, so a checkpoint early in training stays small."""
        return {
            "pos": self.pos,
            "size": self.size,
            **{k: v[: self.size].copy() for k, v in self.arrays.items()},
        }

    def load_state_dict(self, state):
        self.pos, self.size = state["pos"], state["size"]
        for name, array in self.arrays.items():
            array[: self.size] = state[name]


def save_atomic(obj, path):
    """torch.save through a temporary file and a rename: a crash never leaves half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def evaluate(model_path, eval_episodes, run_name, device, capture_video, seed):
    """Deterministic (tanh(mean)) episodes of a saved agent, one env per task; returns (returns, successes)."""
    saved = torch.load(model_path, map_location=device, weights_only=True)
    tasks = list(dict.fromkeys(saved["tasks"]))
    envs = gym.vector.SyncVectorEnv(
        [
            make_env(task, seed + i, i, capture_video, f"{run_name}-eval", saved["max_episode_steps"])
            for i, task in enumerate(tasks)
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",  # MT10 tasks declare different goal bounds
    )
    actor = Actor(saved["obs_dim"], envs.single_action_space).to(device)
    actor.load_state_dict(saved["actor"])
    one_hot = task_one_hot(tasks)
    obs, _ = envs.reset(seed=seed)
    episodic_returns, successes, ever_success = [], [], np.zeros(envs.num_envs, dtype=bool)
    while len(episodic_returns) < eval_episodes:
        with torch.no_grad():
            _, _, actions = actor.get_action(torch.as_tensor(policy_input(obs, one_hot), device=device))
        obs, _, _, _, infos = envs.step(actions.cpu().numpy())
        ever_success |= (infos.get("success", 0) > 0) & infos.get("_success", False)  # envs not just reset
        if "final_info" in infos:
            final = infos["final_info"]
            for i in np.nonzero(final.get("_episode", []))[0]:
                episodic_returns.append(float(final["episode"]["r"][i]))
                successes.append(float(ever_success[i] or final["success"][i]))
                ever_success[i] = False
    envs.close()
    return episodic_returns, successes


if __name__ == "__main__":
    args = tyro.cli(Args)
    args.num_iterations = args.total_timesteps // args.num_envs
    tasks = env_tasks(args.env_id, args.num_envs)  # fails on an unknown task before anything starts
    checkpoint = None
    if args.resume:
        checkpoint_path = os.path.join(args.resume, "checkpoint.pt")
        if not os.path.isfile(checkpoint_path):
            raise FileNotFoundError(
                f"--resume {args.resume}: no checkpoint.pt there; pass a folder runs/<run_name>"
            )
        checkpoint = torch.load(checkpoint_path, weights_only=False)
        run_name = checkpoint["run_name"]
    else:
        run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = f"runs/{run_name}"
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
    writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
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

    # LaGO: load the frozen prior (checked against the env's spaces before any training)
    use_prior = args.kl_coef > 0
    if use_prior:
        prior = load_prior(
            args.prior,
            expected_observation_space=envs.single_observation_space,
            expected_action_space=envs.envs[0].unwrapped.action_space,
            tasks=sorted(set(tasks)),
            device=device,
            quantization=args.prior_quantization,
        )
        lm_info = (
            "" if prior.config.kind == "mlp" else f", LM {prior.config.lm_name}, {prior.config.quantization}"
        )
        print(f"prior: {args.prior} ({prior.config.kind}{lm_info})")
        # Each env keeps one phrasing of its task for the whole run.
        env_instructions = np.array(
            [
                task_instructions(task, args.instruction_split)[
                    i % len(task_instructions(task, args.instruction_split))
                ]
                for i, task in enumerate(tasks)
            ],
            dtype=object,
        )
    # end LaGO

    actor = Actor(obs_dim, envs.single_action_space).to(device)
    qf1 = SoftQNetwork(obs_dim, act_dim).to(device)
    qf2 = SoftQNetwork(obs_dim, act_dim).to(device)
    qf1_target = SoftQNetwork(obs_dim, act_dim).to(device)
    qf2_target = SoftQNetwork(obs_dim, act_dim).to(device)
    qf1_target.load_state_dict(qf1.state_dict())
    qf2_target.load_state_dict(qf2.state_dict())
    q_optimizer = optim.Adam(list(qf1.parameters()) + list(qf2.parameters()), lr=args.q_lr)
    actor_optimizer = optim.Adam(list(actor.parameters()), lr=args.policy_lr)

    # Automatic entropy tuning: alpha weighs the penalty log pi, tuned so that E[log pi] -> -target_entropy
    if args.autotune:
        target_entropy = -float(act_dim)
        log_alpha = torch.zeros(1, requires_grad=True, device=device)
        # LaGO: alpha is kl_coef and the penalty log pi - log prior, tuned so that E[penalty] -> kl_target
        if use_prior:
            target_entropy = -args.kl_target
            log_alpha = torch.full((1,), float(np.log(args.kl_coef)), requires_grad=True, device=device)
        # end LaGO
        alpha = log_alpha.exp().item()
        a_optimizer = optim.Adam([log_alpha], lr=args.q_lr)
    else:
        alpha = args.alpha
        alpha = args.kl_coef if use_prior else alpha  # LaGO

    rb = ReplayBuffer(
        args.buffer_size,
        {
            "observations": (obs_dim,),
            "next_observations": (obs_dim,),
            "actions": (act_dim,),
            "rewards": (),
            "dones": (),
            **({"prior_params": (2 * act_dim,)} if use_prior else {}),  # LaGO
        },
    )
    # LaGO: transitions waiting for the prior, the batch it is working on, and the wall time it cost
    staging = []
    pending = []  # at most one future: the staged batch the prior is evaluating in its thread
    prior_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prior")
    prior_time = 0.0

    def with_prior_params(staged):
        """The staged transitions as one batch, with the prior's (mean, log_std) at each next observation."""
        batch = {name: np.concatenate([t[name] for t in staged]) for name in staged[0]}
        raw_next_obs = torch.as_tensor(batch["next_observations"][:, :raw_obs_dim], device=device)
        instructions = np.tile(env_instructions, len(staged)).tolist()
        with torch.no_grad():
            batch["prior_params"] = torch.cat(
                [
                    prior(
                        raw_next_obs[i : i + args.prior_batch_size],
                        instructions[i : i + args.prior_batch_size],
                    )
                    for i in range(0, len(instructions), args.prior_batch_size)
                ]
            ).cpu()
        return batch

    # end LaGO

    # TRY NOT TO MODIFY: start the game
    global_step = 0
    start_iteration = 1
    if checkpoint is not None:
        actor.load_state_dict(checkpoint["actor"])
        qf1.load_state_dict(checkpoint["qf1"])
        qf2.load_state_dict(checkpoint["qf2"])
        qf1_target.load_state_dict(checkpoint["qf1_target"])
        qf2_target.load_state_dict(checkpoint["qf2_target"])
        q_optimizer.load_state_dict(checkpoint["q_optimizer"])
        actor_optimizer.load_state_dict(checkpoint["actor_optimizer"])
        if args.autotune:
            log_alpha.data.copy_(checkpoint["log_alpha"])
            a_optimizer.load_state_dict(checkpoint["a_optimizer"])
            alpha = log_alpha.exp().item()
        rb.load_state_dict(checkpoint["replay_buffer"])
        global_step, start_iteration = checkpoint["global_step"], checkpoint["iteration"] + 1
        random.setstate(checkpoint["python_rng"])
        np.random.set_state(checkpoint["numpy_rng"])
        torch.set_rng_state(checkpoint["torch_rng"])
        envs.action_space.np_random.bit_generator.state = checkpoint["action_space_rng"]
        # LaGO: the staged transitions, and the batch the prior had finished, handed back as it was
        staging = checkpoint["staging"]
        if checkpoint["prior_pending"] is not None:
            pending.append(Future())
            pending[0].set_result(checkpoint["prior_pending"])
        # end LaGO
    else:
        envs.action_space.seed(args.seed)
    start_time = time.time()
    start_step = global_step
    # A resumed run starts fresh episodes: its envs are seeded apart from the ones it replaces.
    raw_obs, _ = envs.reset(seed=args.seed + global_step)
    obs = policy_input(raw_obs, one_hot)
    ever_success = np.zeros(args.num_envs, dtype=bool)

    def write_checkpoint(iteration, global_step):
        state = {
            "run_name": run_name,
            "args": vars(args),
            "global_step": global_step,
            "iteration": iteration,
            "actor": actor.state_dict(),
            "qf1": qf1.state_dict(),
            "qf2": qf2.state_dict(),
            "qf1_target": qf1_target.state_dict(),
            "qf2_target": qf2_target.state_dict(),
            "q_optimizer": q_optimizer.state_dict(),
            "actor_optimizer": actor_optimizer.state_dict(),
            "replay_buffer": rb.state_dict(),
            "python_rng": random.getstate(),
            "numpy_rng": np.random.get_state(),
            "torch_rng": torch.get_rng_state(),
            "action_space_rng": envs.action_space.np_random.bit_generator.state,
        }
        if args.autotune:
            state["log_alpha"] = log_alpha.detach().cpu()
            state["a_optimizer"] = a_optimizer.state_dict()
        # LaGO: the staged transitions and the batch in the prior's hands (awaited, not yet in the buffer)
        state["staging"] = staging
        state["prior_pending"] = pending[0].result() if pending else None
        # end LaGO
        save_atomic(state, os.path.join(run_dir, "checkpoint.pt"))

    # SIGTERM (a scheduler's pre-emption) is handled like Ctrl-C, and both stop the run at the end of the
    # current step: the checkpoint then holds every transition collected and every update made so far.
    stop_signals = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop_signals.append(signum))
    for iteration in range(start_iteration, args.num_iterations + 1):
        global_step += args.num_envs
        # ALGO LOGIC: put action logic here
        if global_step <= args.learning_starts:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                actions, _, _ = actor.get_action(torch.as_tensor(obs, device=device))
            actions = actions.cpu().numpy()

        # TRY NOT TO MODIFY: execute the game and log data.
        next_raw_obs, rewards, terminations, truncations, infos = envs.step(actions)

        ever_success |= (infos.get("success", 0) > 0) & infos.get("_success", False)  # envs not just reset
        if "final_info" in infos:
            final = infos["final_info"]
            episode_successes = []
            for i in np.nonzero(final.get("_episode", []))[0]:
                print(f"global_step={global_step}, episodic_return={final['episode']['r'][i]}")
                writer.add_scalar("charts/episodic_return", final["episode"]["r"][i], global_step)
                writer.add_scalar("charts/episodic_length", final["episode"]["l"][i], global_step)
                episode_successes.append(float(ever_success[i] or final["success"][i]))
                ever_success[i] = False
            if episode_successes:
                writer.add_scalar("charts/success_rate", np.mean(episode_successes), global_step)

        # TRY NOT TO MODIFY: save data to reply buffer; handle `final_obs`
        real_next_raw_obs = next_raw_obs.copy()
        for idx in np.nonzero(infos.get("_final_obs", []))[0]:
            real_next_raw_obs[idx] = infos["final_obs"][idx]
        new_transitions = [
            {
                "observations": obs,
                "next_observations": policy_input(real_next_raw_obs, one_hot),
                "actions": actions,
                "rewards": rewards,
                "dones": terminations,
            }
        ]
        # LaGO: transitions wait in `staging` until the prior has a batch of next observations to evaluate.
        # The batch goes to the prior's thread; the one it finished before enters the buffer. Right before
        # the first update everything is flushed and awaited, so learning starts on every step.
        if use_prior:
            staging += new_transitions
            new_transitions = []
            starts_learning = global_step - args.num_envs <= args.learning_starts < global_step
            if len(staging) * args.num_envs >= args.prior_batch_size or starts_learning:
                wait_start = time.time()
                if pending:
                    new_transitions.append(pending.pop().result())
                pending.append(prior_thread.submit(with_prior_params, staging))
                staging = []
                if starts_learning or not args.prior_async:
                    new_transitions.append(pending.pop().result())
                prior_time += time.time() - wait_start
        # end LaGO
        for batch in new_transitions:
            rb.add(**batch)

        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = policy_input(next_raw_obs, one_hot)

        # ALGO LOGIC: training.
        if global_step > args.learning_starts:
            data = rb.sample(args.batch_size, device)
            # LaGO: the stored prior parameters are those of the next observations
            if use_prior:
                prior_mean, prior_log_std = data["prior_params"].chunk(2, dim=-1)
            # end LaGO
            with torch.no_grad():
                next_state_actions, next_state_log_pi, _ = actor.get_action(data["next_observations"])
                next_state_penalty = next_state_log_pi
                # LaGO: the soft target subtracts kl_coef * (log pi - log prior) instead of alpha * log pi
                if use_prior:
                    next_state_penalty = prior_kl_estimate(
                        next_state_log_pi, next_state_actions, prior_mean, prior_log_std
                    )
                # end LaGO
                qf1_next_target = qf1_target(data["next_observations"], next_state_actions)
                qf2_next_target = qf2_target(data["next_observations"], next_state_actions)
                min_qf_next_target = (
                    torch.min(qf1_next_target, qf2_next_target).view(-1) - alpha * next_state_penalty
                )
                next_q_value = data["rewards"] + (1 - data["dones"]) * args.gamma * min_qf_next_target

            qf1_a_values = qf1(data["observations"], data["actions"]).view(-1)
            qf2_a_values = qf2(data["observations"], data["actions"]).view(-1)
            qf1_loss = F.mse_loss(qf1_a_values, next_q_value)
            qf2_loss = F.mse_loss(qf2_a_values, next_q_value)
            qf_loss = qf1_loss + qf2_loss

            # optimize the model
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            if iteration % args.policy_frequency == 0:  # TD 3 Delayed update support
                policy_states = data["observations"]
                # LaGO: the actor (and the coefficient) learn on the next states, where the prior is known
                if use_prior:
                    policy_states = data["next_observations"]
                # end LaGO
                for _ in range(
                    args.policy_frequency
                ):  # compensate for the delay by doing 'actor_update_interval' instead of 1
                    pi, log_pi, _ = actor.get_action(policy_states)
                    penalty = log_pi
                    # LaGO: KL(pi || prior) replaces the negative entropy
                    if use_prior:
                        penalty = prior_kl_estimate(log_pi, pi, prior_mean, prior_log_std)
                    # end LaGO
                    qf1_pi = qf1(policy_states, pi)
                    qf2_pi = qf2(policy_states, pi)
                    min_qf_pi = torch.min(qf1_pi, qf2_pi).view(-1)
                    actor_loss = (alpha * penalty - min_qf_pi).mean()

                    actor_optimizer.zero_grad()
                    actor_loss.backward()
                    actor_optimizer.step()

                    if args.autotune:
                        # alpha rises when E[penalty] exceeds its target (-target_entropy), falls otherwise
                        alpha_loss = (-log_alpha * (penalty.detach() + target_entropy)).mean()

                        a_optimizer.zero_grad()
                        alpha_loss.backward()
                        a_optimizer.step()
                        alpha = log_alpha.exp().item()

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
                if args.autotune:
                    writer.add_scalar("losses/alpha_loss", alpha_loss.item(), global_step)
                # LaGO
                if use_prior:
                    writer.add_scalar("losses/prior_kl", penalty.mean().item(), global_step)
                    writer.add_scalar("charts/kl_coef", alpha, global_step)
                    writer.add_scalar(
                        "charts/prior_time_fraction", prior_time / (time.time() - start_time), global_step
                    )
                # end LaGO
                sps = int((global_step - start_step) / (time.time() - start_time))
                print("SPS:", sps)
                writer.add_scalar("charts/SPS", sps, global_step)

        if stop_signals:
            write_checkpoint(iteration, global_step)
            print(
                f"interrupted: checkpoint at global_step {global_step} in {run_dir}; resume with --resume {run_dir}"
            )
            raise SystemExit(130)
        if args.checkpoint_every and global_step % args.checkpoint_every < args.num_envs:
            write_checkpoint(iteration, global_step)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    write_checkpoint(args.num_iterations, global_step)

    if args.save_model:
        model_path = f"{run_dir}/{args.exp_name}.cleanrl_model"
        saved = {
            "actor": actor.state_dict(),
            "qf1": qf1.state_dict(),
            "qf2": qf2.state_dict(),
            "tasks": tasks,
            "obs_dim": obs_dim,
            "act_dim": act_dim,
            "max_episode_steps": args.max_episode_steps,
            "args": {
                k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))
            },
        }
        save_atomic(saved, model_path)
        print(f"model saved to {model_path}")
        episodic_returns, successes = evaluate(
            model_path,
            eval_episodes=args.eval_episodes,
            run_name=run_name,
            device=device,
            capture_video=args.capture_video,
            seed=args.seed + 10_000,
        )
        for idx, episodic_return in enumerate(episodic_returns):
            writer.add_scalar("eval/episodic_return", episodic_return, idx)
        writer.add_scalar("eval/success_rate", np.mean(successes), global_step)
        print(f"eval: success rate {np.mean(successes):.3f} over {len(successes)} episodes")

        if args.upload_model:
            repo_name = f"{args.env_id}-{args.exp_name}-seed{args.seed}"
            repo_id = f"{args.hf_entity}/{repo_name}" if args.hf_entity else repo_name
            push_agent_to_hub(
                repo_id,
                model_path=model_path,
                script_path=__file__,
                run_dir=run_dir,
                algorithm=args.exp_name,
                env_id=args.env_id,
                command="python " + " ".join(sys.argv),
                prior=args.prior if use_prior else None,  # LaGO
                kl_coef=args.kl_coef,  # LaGO
                metrics={"eval/success_rate": round(float(np.mean(successes)), 4)},
                video_folder=f"videos/{run_name}-eval",
            )

    prior_thread.shutdown()  # LaGO
    envs.close()
    writer.close()
