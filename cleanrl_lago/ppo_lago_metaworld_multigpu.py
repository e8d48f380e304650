# docs and experiment results can be found at docs/rl-algorithms/ppo_lago.md
"""PPO guided by a language-model prior (LaGO) on Meta-World v3 (continuous, 4-dim actions).

CleanRL's ppo_continuous_action.py with one change, fenced by ``# LaGO`` comments: the policy loss
gains ``kl_coef * KL(pi(.|s) || prior(.|s, instruction))``, in closed form for diagonal Gaussians.
The prior is frozen; it is evaluated once per collected state, in batches, on the raw observation
(it normalises with its own statistics), and its parameters are reused across update epochs.
``--kl-coef 0`` is vanilla PPO: the prior is not even loaded.

Unlike CleanRL, observations are normalised inline with one running mean/std shared by all envs,
and those statistics are saved with the agent, so a reloaded agent sees what it was trained on.

Launched by ``torchrun --nproc_per_node N``, it trains one policy data-parallel (lines marked ``# DDP``;
in one process they do nothing): each rank steps its own ``--num-envs`` envs and evaluates the prior
on its own states, gradients are averaged, and only rank 0 logs and saves. See docs/distributed.md.
"""

import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
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
    learning_rate: float = 3e-4
    """the learning rate of the optimizer"""
    num_envs: int = 1
    """the number of parallel game environments of each process (MT10: all processes' a multiple of 10)"""
    num_steps: int = 2048
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """Toggle learning rate annealing for policy and value networks"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 32
    """the number of mini-batches"""
    update_epochs: int = 10
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """Toggles advantages normalization"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """Toggles whether or not to use a clipped loss for the value function, as per the paper."""
    ent_coef: float = 0.0
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = None
    """the target KL divergence threshold"""
    eval_episodes: int = 10
    """episodes per instruction split when evaluating the saved agent"""
    checkpoint_every: int = 10
    """write a resumable checkpoint every this many iterations (0: only on interruption)"""
    resume: str | None = None
    """a run folder `runs/{run_name}` whose checkpoint to resume from"""

    # LaGO: prior arguments
    prior: str = DEFAULT_PRIORS["Meta-World/MT10"]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a prior shipped with cleanrl-lago"""
    kl_coef: float = 0.05
    """coefficient of KL(pi || prior) in the policy loss; 0 is vanilla PPO (the prior is not loaded)"""
    kl_schedule: Literal["constant", "linear", "auto"] = "constant"
    """constant; linear from `kl-coef` to `kl-coef-final`; or auto-tuned toward `kl-target`"""
    kl_coef_final: float = 0.0
    """the coefficient at the end of training, for `--kl-schedule linear`"""
    kl_target: float = 1.0
    """the KL(pi || prior) in nats that `--kl-schedule auto` steers toward"""
    kl_coef_lr: float = 1e-2
    """the learning rate of log(kl_coef), for `--kl-schedule auto`"""
    prior_quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the one saved with the prior, bf16 for the shipped
    ones); none is fp32: the same trained weights, slightly different outputs"""
    prior_batch_size: int = 1024
    """states per forward pass of the prior"""
    # end LaGO

    # to be filled in runtime
    batch_size: int = 0
    """the batch size of one process (computed in runtime)"""
    # DDP
    world_size: int = 1
    """the number of data-parallel processes, torchrun's WORLD_SIZE (computed in runtime)"""
    global_batch_size: int = 0
    """the batch size of all processes together (computed in runtime)"""
    # end DDP
    minibatch_size: int = 0
    """the mini-batch size of one process (computed in runtime)"""
    num_iterations: int = 0
    """the number of iterations (computed in runtime)"""


def env_tasks(env_id, num_envs):
    """The task of each env: one task repeated, or the MT10 tasks in turn."""
    if env_id.lower() == "mt10":
        if num_envs % len(MT10_TASKS):
            raise ValueError(
                f"--env-id MT10 needs --num-envs a multiple of {len(MT10_TASKS)}, got {num_envs}"
            )
        return [MT10_TASKS[i % len(MT10_TASKS)] for i in range(num_envs)]
    return [check_task(env_id)] * num_envs


def make_env(task, seed, idx, capture_video, run_name, gamma, max_episode_steps):
    def thunk():
        render_mode = "rgb_array" if capture_video and idx == 0 else None
        env = make_metaworld_env(
            task, seed=seed, render_mode=render_mode, max_episode_steps=max_episode_steps
        )
        if render_mode:
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        env = gym.wrappers.ClipAction(env)  # episode statistics: Meta-World records them itself
        if gamma is not None:  # training: normalised, clipped rewards as CleanRL; evaluation: raw
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
            env = gym.wrappers.TransformReward(env, lambda reward: np.clip(reward, -10, 10))
        return env

    return thunk


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class RunningMeanStd(nn.Module):
    """Running mean and variance of observations, as buffers so they are saved with the agent."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, x):
        batch_mean, batch_var, batch_count = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + batch_count
        self.mean += delta * batch_count / total
        self.var = (
            self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        ) / total
        self.count = total

    def normalize(self, x):
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + 1e-8), -10, 10).float()


class Agent(nn.Module):
    def __init__(self, raw_obs_dim: int, n_tasks: int, act_dim: int):
        super().__init__()
        self.obs_rms = RunningMeanStd(raw_obs_dim)
        obs_dim = raw_obs_dim + (n_tasks if n_tasks > 1 else 0)
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None, noise=None):
        action_mean = self.actor_mean(x)
        action_logstd = self.actor_logstd.expand_as(action_mean)
        action_std = torch.exp(action_logstd)
        probs = Normal(action_mean, action_std)
        if action is None:  # a sample of probs from the caller's standard normal noise (see the rollout)
            action = action_mean + action_std * noise
        return (
            action,
            probs.log_prob(action).sum(1),
            probs.entropy().sum(1),
            self.critic(x),
            action_mean,
            action_logstd,
        )


# LaGO
def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q):
    """Closed-form KL(p || q) between diagonal Gaussians, summed over action dimensions."""
    var_ratio = torch.exp(2 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) / torch.exp(log_std_q)) ** 2
    return 0.5 * (var_ratio + mahalanobis - 1 - torch.log(var_ratio)).sum(-1)


# end LaGO


def task_one_hot(tasks):
    """For MT10, the policy is told its task as a one-hot (Meta-World's MT10 convention)."""
    names = sorted(set(tasks))
    if len(names) == 1:
        return None
    return torch.eye(len(MT10_TASKS))[[list(MT10_TASKS).index(t) for t in tasks]]


def save_atomic(obj, path):
    """torch.save through a temporary file and a rename: a crash never leaves half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


# DDP: collectives over all ranks; in one process (no process group) each returns its input unchanged
def all_envs(x):
    """The rows (one per env) of every rank, in rank order: those of all envs, in their global order."""
    if not dist.is_initialized():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_items(items):
    """The lists of every rank, concatenated in rank order."""
    if not dist.is_initialized():
        return items
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def rank_mean(x):
    """The mean of a tensor over the ranks."""
    if not dist.is_initialized():
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def mean_std(x):
    """Mean and standard deviation (unbiased, as torch.std) of x, of the x of all ranks together (same sizes)."""
    if not dist.is_initialized():
        return x.mean(), x.std()
    count = x.numel() * dist.get_world_size()
    mean = x.sum()
    dist.all_reduce(mean)
    mean = mean / count
    squares = ((x - mean) ** 2).sum()
    dist.all_reduce(squares)
    return mean, torch.sqrt(squares / (count - 1))


def average_gradients(model):
    """Replace each rank's gradients by their mean over the ranks, in one all-reduce."""
    if not dist.is_initialized():
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, mean in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(mean.view_as(g))


class NullWriter:
    """What ranks other than 0 log to: nothing."""

    def add_scalar(self, *args, **kwargs):
        pass

    add_text = close = add_scalar


# end DDP


def evaluate(model_path, eval_episodes, run_name, device, capture_video, seed):
    """Deterministic (mean-action) episodes of a saved agent, one env per task; returns (returns, successes)."""
    saved = torch.load(model_path, map_location=device, weights_only=True)
    tasks = saved["tasks"]
    envs = gym.vector.SyncVectorEnv(
        [
            make_env(task, seed + i, i, capture_video, f"{run_name}-eval", None, saved["max_episode_steps"])
            for i, task in enumerate(dict.fromkeys(tasks))
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",  # MT10 tasks declare different goal bounds
    )
    agent = Agent(saved["raw_obs_dim"], len(set(tasks)), saved["act_dim"]).to(device)
    agent.load_state_dict(saved["agent"])
    one_hot = task_one_hot(list(dict.fromkeys(tasks)))
    obs, _ = envs.reset(seed=seed)
    episodic_returns, successes, ever_success = [], [], np.zeros(envs.num_envs, dtype=bool)
    while len(episodic_returns) < eval_episodes:
        x = agent.obs_rms.normalize(torch.as_tensor(obs, dtype=torch.float64, device=device))
        if one_hot is not None:
            x = torch.cat([x, one_hot.to(device)], dim=1)
        with torch.no_grad():
            actions = agent.actor_mean(x)
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
    # DDP: torchrun starts WORLD_SIZE copies of this script (ranks); each steps its own --num-envs envs
    args.world_size = int(os.getenv("WORLD_SIZE", "1"))
    rank, local_rank = int(os.getenv("RANK", "0")), int(os.getenv("LOCAL_RANK", "0"))
    distributed = args.world_size > 1
    rank_envs = slice(rank * args.num_envs, (rank + 1) * args.num_envs)  # among the envs of all ranks
    if rank > 0:
        sys.stdout = open(os.devnull, "w")  # only rank 0 prints
    # end DDP
    args.batch_size = int(args.num_envs * args.num_steps)
    args.global_batch_size = args.batch_size * args.world_size  # DDP
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = args.total_timesteps // args.global_batch_size  # DDP
    # The task of every env of every rank; fails on an unknown task before anything starts.
    all_tasks = env_tasks(args.env_id, args.num_envs * args.world_size)  # DDP
    tasks = all_tasks[rank_envs]  # DDP: this rank's envs
    checkpoint = None
    if args.resume:
        checkpoint_path = os.path.join(args.resume, "checkpoint.pt")
        if not os.path.isfile(checkpoint_path):
            raise FileNotFoundError(
                f"--resume {args.resume}: no checkpoint.pt there; pass a folder runs/<run_name>"
            )
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)  # DDP: not on GPU 0
        run_name = checkpoint["run_name"]
        # DDP: iterations and seeds count batches of all processes, which must not change on resume
        saved_batch = checkpoint["args"].get("global_batch_size", checkpoint["args"]["batch_size"])
        if saved_batch != args.global_batch_size:
            raise ValueError(
                f"--resume {args.resume}: the run collected {saved_batch} steps per iteration (processes x "
                f"--num-envs x --num-steps), this launch {args.global_batch_size}; resume it with the same numbers"
            )
        # end DDP
    else:
        run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = f"runs/{run_name}"
    if args.track and rank == 0:  # DDP
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
    if rank == 0:  # DDP: only rank 0 logs
        writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    else:  # DDP
        writer = NullWriter()  # DDP
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
    )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() and args.cuda else "cpu")  # DDP
    # DDP: NCCL between GPUs, gloo between CPU processes
    if distributed:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    # end DDP

    # env setup
    envs = gym.vector.SyncVectorEnv(
        [
            make_env(task, args.seed + i, i, args.capture_video, run_name, args.gamma, args.max_episode_steps)
            for i, task in enumerate(tasks, start=rank_envs.start)  # DDP: i counts the envs of all ranks
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",  # MT10 tasks declare different goal bounds
    )
    assert isinstance(envs.single_action_space, gym.spaces.Box), "only continuous action space is supported"
    raw_obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    one_hot = task_one_hot(all_tasks)  # DDP: all_tasks
    obs_dim = raw_obs_dim + (0 if one_hot is None else one_hot.shape[1])
    if one_hot is not None:
        one_hot = one_hot[rank_envs].to(device)  # DDP: rank_envs

    # LaGO: load the frozen prior (checked against the env's spaces before any training)
    use_prior = args.kl_coef > 0 or args.kl_schedule != "constant"
    if use_prior:
        prior = load_prior(
            args.prior,
            expected_observation_space=envs.single_observation_space,
            expected_action_space=envs.envs[0].unwrapped.action_space,  # before ClipAction widens it
            tasks=sorted(set(all_tasks)),  # DDP: all_tasks
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
                for i, task in enumerate(tasks, start=rank_envs.start)  # DDP: i counts all ranks' envs
            ],
            dtype=object,
        )
        log_kl_coef = torch.tensor(np.log(max(args.kl_coef, 1e-8)), device=device, requires_grad=True)
        kl_coef_optimizer = optim.Adam([log_kl_coef], lr=args.kl_coef_lr)
        kl_coef = args.kl_coef
    # end LaGO

    agent = Agent(raw_obs_dim, len(set(all_tasks)), act_dim).to(device)  # DDP: all_tasks
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # ALGO Logic: Storage setup
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim)).to(device)
    actions = torch.zeros((args.num_steps, args.num_envs, act_dim)).to(device)
    logprobs = torch.zeros((args.num_steps, args.num_envs)).to(device)
    rewards = torch.zeros((args.num_steps, args.num_envs)).to(device)
    dones = torch.zeros((args.num_steps, args.num_envs)).to(device)
    values = torch.zeros((args.num_steps, args.num_envs)).to(device)
    # LaGO: the raw observation of every collected state, and the prior's (mean, log_std) for it
    raw_obs = torch.zeros((args.num_steps, args.num_envs, raw_obs_dim)).to(device)
    prior_params = torch.zeros((args.num_steps, args.num_envs, 2 * act_dim)).to(device)
    # end LaGO

    # TRY NOT TO MODIFY: start the game
    global_step = 0
    start_iteration = 1
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        global_step, start_iteration = checkpoint["global_step"], checkpoint["iteration"] + 1
        random.setstate(checkpoint["python_rng"])
        np.random.set_state(checkpoint["numpy_rng"])
        torch.set_rng_state(checkpoint["torch_rng"])
        # LaGO
        if use_prior:
            log_kl_coef.data.fill_(checkpoint["log_kl_coef"])
            kl_coef_optimizer.load_state_dict(checkpoint["kl_coef_optimizer"])
        # end LaGO
    start_time = time.time()
    start_step = global_step
    # A resumed run starts fresh episodes: its envs are seeded apart from the ones it replaces.
    first_seed = args.seed + (start_iteration - 1) * args.num_envs * args.world_size  # DDP: * args.world_size
    next_raw_obs, _ = envs.reset(seed=first_seed + rank_envs.start)  # DDP: + rank_envs.start
    next_raw_obs = torch.as_tensor(next_raw_obs, dtype=torch.float64, device=device)
    next_done = torch.zeros(args.num_envs).to(device)
    ever_success = np.zeros(args.num_envs, dtype=bool)

    def observe(raw):
        """Update the running statistics with new raw observations and return the policy's input."""
        agent.obs_rms.update(all_envs(raw))  # DDP: with every rank's observations, in the global env order
        x = agent.obs_rms.normalize(raw)
        return x if one_hot is None else torch.cat([x, one_hot], dim=1)

    next_obs = observe(next_raw_obs)

    def write_checkpoint(iteration, global_step):
        if rank > 0:  # DDP: every rank holds the same state (RNG streams included); rank 0 writes it
            return
        state = {
            "run_name": run_name,
            "args": vars(args),
            "global_step": global_step,
            "iteration": iteration,
            "agent": agent.state_dict(),
            "optimizer": optimizer.state_dict(),
            "python_rng": random.getstate(),
            "numpy_rng": np.random.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        # LaGO
        if use_prior:
            state["log_kl_coef"] = log_kl_coef.item()
            state["kl_coef_optimizer"] = kl_coef_optimizer.state_dict()
        # end LaGO
        save_atomic(state, os.path.join(run_dir, "checkpoint.pt"))

    # SIGTERM (a scheduler's pre-emption) is handled like Ctrl-C: checkpoint, then stop.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # DDP: a signal only sets a flag; the ranks compare flags before each env step and stop at the same one
    if distributed:
        signalled = torch.zeros(1, device=device)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: signalled.fill_(1))
    # end DDP
    completed = (start_iteration - 1, global_step)  # the last iteration that ran to its end
    try:
        for iteration in range(start_iteration, args.num_iterations + 1):
            iteration_start = time.time()
            # Annealing the rate if instructed to do so.
            if args.anneal_lr:
                frac = 1.0 - (iteration - 1.0) / args.num_iterations
                lrnow = frac * args.learning_rate
                optimizer.param_groups[0]["lr"] = lrnow

            episode_successes = []
            for step in range(0, args.num_steps):
                if distributed and rank_mean(signalled) > 0:  # DDP
                    raise KeyboardInterrupt
                global_step += args.num_envs * args.world_size  # DDP: * args.world_size
                obs[step] = next_obs
                dones[step] = next_done
                raw_obs[step] = next_raw_obs  # LaGO

                # ALGO LOGIC: action logic
                with torch.no_grad():
                    # Every rank draws the noise of all envs from one stream (same seed) and keeps its own
                    # envs' rows: N ranks sample the very actions of one process with all the envs (DDP).
                    noise = torch.randn(args.num_envs * args.world_size, act_dim)[rank_envs].to(device)
                    action, logprob, _, value, _, _ = agent.get_action_and_value(next_obs, noise=noise)
                    values[step] = value.flatten()
                actions[step] = action
                logprobs[step] = logprob

                # TRY NOT TO MODIFY: execute the game and log data.
                next_raw_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
                next_done = np.logical_or(terminations, truncations)
                rewards[step] = torch.tensor(reward).to(device).view(-1)
                next_raw_obs = torch.as_tensor(next_raw_obs, dtype=torch.float64, device=device)
                next_obs, next_done = observe(next_raw_obs), torch.Tensor(next_done).to(device)

                ever_success |= (infos.get("success", 0) > 0) & infos.get(
                    "_success", False
                )  # envs not just reset
                if "final_info" in infos:
                    final = infos["final_info"]
                    for i in np.nonzero(final.get("_episode", []))[0]:
                        print(f"global_step={global_step}, episodic_return={final['episode']['r'][i]}")
                        writer.add_scalar("charts/episodic_return", final["episode"]["r"][i], global_step)
                        writer.add_scalar("charts/episodic_length", final["episode"]["l"][i], global_step)
                        episode_successes.append(float(ever_success[i] or final["success"][i]))
                        ever_success[i] = False
            episode_successes = all_items(episode_successes)  # DDP: the episodes of every rank
            if episode_successes:
                writer.add_scalar("charts/success_rate", np.mean(episode_successes), global_step)

            # LaGO: the frozen prior's (mean, log_std) for every collected state, once, in batches
            prior_time = 0.0
            if use_prior:
                prior_start = time.time()
                flat_raw_obs = raw_obs.reshape(-1, raw_obs_dim)
                flat_instructions = np.broadcast_to(
                    env_instructions, (args.num_steps, args.num_envs)
                ).reshape(-1)
                with torch.no_grad():
                    prior_params.view(-1, 2 * act_dim).copy_(
                        torch.cat(
                            [
                                prior(
                                    flat_raw_obs[i : i + args.prior_batch_size],
                                    flat_instructions[i : i + args.prior_batch_size].tolist(),
                                )
                                for i in range(0, args.batch_size, args.prior_batch_size)
                            ]
                        )
                    )
                prior_time = time.time() - prior_start
                if args.kl_schedule == "linear":
                    kl_coef = (
                        args.kl_coef
                        + (args.kl_coef_final - args.kl_coef) * (iteration - 1) / args.num_iterations
                    )
                elif args.kl_schedule == "auto":
                    kl_coef = log_kl_coef.exp().item()
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
                    advantages[t] = lastgaelam = (
                        delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                    )
                returns = advantages + values

            # flatten the batch
            b_obs = obs.reshape((-1, obs_dim))
            b_logprobs = logprobs.reshape(-1)
            b_actions = actions.reshape((-1, act_dim))
            b_advantages = advantages.reshape(-1)
            b_returns = returns.reshape(-1)
            b_values = values.reshape(-1)
            b_prior_mean, b_prior_log_std = prior_params.reshape(-1, 2 * act_dim).chunk(2, dim=-1)  # LaGO

            # Optimizing the policy and value network
            b_inds = np.arange(args.batch_size)
            clipfracs = []
            for epoch in range(args.update_epochs):
                np.random.shuffle(b_inds)
                for start in range(0, args.batch_size, args.minibatch_size):
                    end = start + args.minibatch_size
                    mb_inds = b_inds[start:end]

                    _, newlogprob, entropy, newvalue, newmean, newlogstd = agent.get_action_and_value(
                        b_obs[mb_inds], b_actions[mb_inds]
                    )
                    logratio = newlogprob - b_logprobs[mb_inds]
                    ratio = logratio.exp()

                    with torch.no_grad():
                        # calculate approx_kl http://joschu.net/blog/kl-approx.html
                        old_approx_kl = (-logratio).mean()
                        approx_kl = ((ratio - 1) - logratio).mean()
                        clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                    mb_advantages = b_advantages[mb_inds]
                    if args.norm_adv:
                        mean, std = mean_std(mb_advantages)  # DDP: over the minibatches of all ranks
                        mb_advantages = (mb_advantages - mean) / (std + 1e-8)

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

                    # LaGO: closed-form KL(pi || prior) between diagonal Gaussians, added to the policy loss
                    if use_prior:
                        prior_kl = gaussian_kl(
                            newmean, newlogstd, b_prior_mean[mb_inds], b_prior_log_std[mb_inds]
                        ).mean()
                        loss = loss + kl_coef * prior_kl
                    # end LaGO

                    optimizer.zero_grad()
                    loss.backward()
                    average_gradients(agent)  # DDP: the mean gradient of all ranks, clipped below
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()

                if args.target_kl is not None and rank_mean(approx_kl) > args.target_kl:  # DDP: rank_mean
                    break

            # LaGO: auto-tuned coefficient, as SAC tunes its temperature: up when KL > target
            if use_prior and args.kl_schedule == "auto":
                kl_coef_loss = -log_kl_coef * (rank_mean(prior_kl.detach()) - args.kl_target)  # DDP
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
                writer.add_scalar(
                    "charts/prior_time_fraction", prior_time / (time.time() - iteration_start), global_step
                )
            # end LaGO
            sps = int((global_step - start_step) / (time.time() - start_time))
            print("SPS:", sps)
            writer.add_scalar("charts/SPS", sps, global_step)

            completed = (iteration, global_step)
            if args.checkpoint_every and iteration % args.checkpoint_every == 0:
                write_checkpoint(*completed)
    except KeyboardInterrupt:
        # The weights as they are now; the unfinished iteration is collected again on resume.
        write_checkpoint(*completed)
        print(
            f"interrupted: checkpoint of iteration {completed[0]} in {run_dir}; resume with --resume {run_dir}"
        )
        if distributed:  # DDP
            dist.barrier()  # DDP: every rank waits until rank 0 has written the checkpoint
            dist.destroy_process_group()  # DDP
        raise SystemExit(130) from None
    write_checkpoint(*completed)
    if distributed:  # DDP: rank 0 saves, evaluates and uploads alone
        dist.barrier()  # DDP: every rank waits until rank 0 has written the checkpoint
        dist.destroy_process_group()  # DDP

    if args.save_model and rank == 0:  # DDP: rank == 0
        model_path = f"{run_dir}/{args.exp_name}.cleanrl_model"
        saved = {
            "agent": agent.state_dict(),
            "tasks": all_tasks,  # DDP: all_tasks
            "raw_obs_dim": raw_obs_dim,
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
            launcher = f"torchrun --nproc_per_node {args.world_size}" if distributed else "python"  # DDP
            push_agent_to_hub(
                repo_id,
                model_path=model_path,
                script_path=__file__,
                run_dir=run_dir,
                algorithm=args.exp_name,
                env_id=args.env_id,
                command=f"{launcher} " + " ".join(sys.argv),  # DDP: launcher
                prior=args.prior if use_prior else None,
                kl_coef=args.kl_coef,
                metrics={"eval/success_rate": round(float(np.mean(successes)), 4)},
                video_folder=f"videos/{run_name}-eval",
            )

    envs.close()
    writer.close()
