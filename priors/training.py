"""Training a LaGO prior on demonstrations (stage 1 of LaGO).

Maximum likelihood on (instruction, observation, action) steps, or, where the demonstrations give
each step a set of equally good actions (discrete actions), on the likelihood of the set
``-log sum_{a in set} p(a | s)``; a validation split by episode (phrased with the dataset's
validation phrasings when it has them); early stopping on the validation loss with patience;
TensorBoard under ``runs/``, and at the end the
success rate of the prior used directly as a policy (greedy / mean action) in environments the
caller's factory makes (:mod:`priors.evaluation`), with the train and the held-out instruction
phrasings. The metrics and the command go into the saved prior's provenance and model card.

cleanrl-lago's command line for its benchmarks is ``python -m cleanrl_lago.train_prior``, which
passes its environments to :func:`train`. See docs/priors.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from priors.configuration import LoraSettings, PriorKind, Provenance
from priors.datasets import Demonstrations, load_demonstrations
from priors.evaluation import EnvFactory, success_by_split
from priors.io import push_prior_to_hub, save_prior
from priors.lm import DEFAULT_LM, Quantization
from priors.modeling_base import Prior
from priors.registry import build_prior
from priors.resume import LoopState, checkpoint_path, load_state, save_state

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """How to train a prior (the options of ``python -m cleanrl_lago.train_prior``)."""

    dataset: str
    """Minari dataset id of the demonstrations"""
    output: str
    """folder the trained prior is written to (atomically)"""
    kind: PriorKind = "lm"
    """lm: pretrained LM (LaGO's soft tokens); lm-instruction: the frozen LM reads the instruction only, a GRU
    reads its token states (cached per prompt); gru: no LM, a GRU on the LM tokenizer's tokens trained from
    scratch (the fair baseline); mlp: no LM, a bag of words (the weakest reference)"""
    lm: str = DEFAULT_LM
    """the language model: a Hub id, a local folder, a .gguf file, or the built-in default"""
    quantization: Quantization | None = None
    """LM kinds: precision of the frozen LM: none (fp32), bf16, nf4, int8 (default: nf4 on CUDA, none on CPU)"""
    n_obs_tokens: int | None = None
    """lm only: soft tokens the observation is projected to (default 4)"""
    observation_dims: int | None = None
    """the prior sees only the first this many observation entries (e.g. 10: CLEVR-Robot's ball
    positions without the numeric goal, so the goal must come from the instruction)"""
    lm_layers: int | None = None
    """LM kinds: run only the LM's first this many layers (lm: the soft tokens are read there; lm-instruction: the
    instruction's states; default: all)"""
    random_lm: bool = False
    """LM kinds: the same LM architecture with random weights (seed 0), the no-pretraining control"""
    token_dropout: float = 0.0
    """gru and lm-instruction: drop each instruction token with this probability while training (word dropout)"""
    log_std_min: float = -5.0
    """continuous actions: floor of the prior's log standard deviation (e.g. -2.3: std >= 0.1, so the
    validation NLL cannot be won by a collapsing variance, and KL(pi || prior) stays moderate)"""
    lora_r: int = 0
    """rank of LoRA adapters on the LM (0: off, the LM stays fully frozen; LM kinds only, lm-instruction: on its first lm-layers layers)"""
    hidden_size: int = 256
    """width of the projection and head MLPs"""
    epochs: int | None = None
    """maximum number of passes over the training steps (None: until early stopping)"""
    batch_size: int = 256
    """steps per gradient step"""
    instructions_per_batch: int = 16
    """distinct instructions per batch (steps are grouped so the LM runs each prefix once)"""
    learning_rate: float = 3e-4
    """AdamW learning rate of the trainable parts (1e-3 made the LM prior's NLL stall)"""
    weight_decay: float = 1e-4
    """AdamW weight decay"""
    val_fraction: float = 0.1
    """share of the episodes held out for validation"""
    patience: int = 3
    """epochs without a better validation loss (val_set_nll with action sets, else val_nll) before stopping"""
    max_minutes: float | None = None
    """wall-clock budget: stop after the epoch in which training passes it, keeping the best epoch (None: none)"""
    max_steps_per_epoch: int | None = None
    """cap on gradient steps per epoch (default: one pass over the training steps)"""
    successful_only: bool = True
    """train only on the expert episodes that succeeded"""
    exclude_tasks: tuple[str, ...] = ()
    """leave out the demonstrations of these tasks (a transfer experiment: the prior never sees them,
    and its config lists only the others)"""
    eval_episodes: int = 50
    """episodes (per task, if the prior has tasks) of the prior as a policy, per instruction split; 0: skip"""
    eval_max_episode_steps: int | None = None
    """time limit of the evaluation episodes (default: the environment's)"""
    seed: int = 0
    """seed of the split, the initialisation, the batches and the evaluation"""
    device: str = "auto"
    """cpu, cuda, or auto"""
    runs_dir: str = "runs"
    """TensorBoard logs go to runs_dir/prior__..."""
    push_to_hub: str | None = None
    """also upload the prior to this Hugging Face Hub repo id"""
    resume: bool = False
    """continue an interrupted training of --output after its last finished epoch (same options)"""


def split_by_episode(demos: Demonstrations, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and validation steps; whole episodes go to one side."""
    episodes = np.unique(demos.episode_ids)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(val_fraction * len(episodes))) if len(episodes) > 1 else 0
    val_episodes = rng.choice(episodes, size=n_val, replace=False)
    is_val = np.isin(demos.episode_ids, val_episodes)
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def grouped_batches(
    rows: np.ndarray, instruction_ids: np.ndarray, batch_size: int, groups: int, rng: np.random.Generator
):
    """Endless batches of ``groups`` instructions (drawn by frequency) x ``batch_size // groups`` steps.

    Grouping lets the LM prior run each instruction's prefix once per batch; drawing instructions by
    their frequency and steps uniformly within them keeps every step equally likely.
    """
    by_instruction = [rows[instruction_ids[rows] == i] for i in np.unique(instruction_ids[rows])]
    weights = np.array([len(r) for r in by_instruction], dtype=np.float64)
    weights /= weights.sum()
    per_group = max(1, batch_size // groups)
    while True:
        chosen = rng.choice(len(by_instruction), size=groups, p=weights)
        yield np.concatenate([rng.choice(by_instruction[i], size=per_group) for i in chosen])


def validate(
    prior: Prior,
    demos: Demonstrations,
    rows: np.ndarray,
    chunk: int = 1024,
    instruction_ids: np.ndarray | None = None,
) -> dict[str, float]:
    """Validation metrics of ``rows``: NLL of the labels and, for discrete actions, accuracy of the
    argmax (else MSE of the mean); with action sets also ``val_set_nll`` (the set loss),
    ``val_good_mass`` (mean probability of the set) and ``val_good_argmax`` (share of steps whose
    argmax is in the set). ``instruction_ids`` replaces the steps' instructions (e.g. with the
    validation phrasings, ``demos.split_instruction_ids["validation"]``)."""
    instruction_ids = demos.instruction_ids if instruction_ids is None else instruction_ids
    rows = rows[np.argsort(instruction_ids[rows], kind="stable")]  # contiguous prefixes
    discrete = isinstance(demos.action_space, gym.spaces.Discrete)
    has_sets = discrete and demos.action_sets is not None
    sums = dict.fromkeys(["val_nll", "val_accuracy" if discrete else "val_action_mse"], 0.0)
    if has_sets:
        sums.update(val_set_nll=0.0, val_good_mass=0.0, val_good_argmax=0.0)
    with torch.no_grad():
        for start in range(0, len(rows), chunk):
            idx = rows[start : start + chunk]
            obs, instructions, actions = batch(demos, idx, prior.device, instruction_ids)
            dist = prior.distribution(obs, instructions)
            sums["val_nll"] += float(-dist.log_prob(actions).sum())
            if not discrete:
                sums["val_action_mse"] += float(((dist.mean - actions) ** 2).mean(-1).sum())
                continue
            argmax = dist.probs.argmax(-1)
            sums["val_accuracy"] += float((argmax == actions).float().sum())
            if has_sets:
                sets = torch.as_tensor(demos.action_sets[idx], device=prior.device)
                mass = (dist.probs * sets).sum(-1)
                sums["val_set_nll"] += float(-mass.log().sum())
                sums["val_good_mass"] += float(mass.sum())
                sums["val_good_argmax"] += float(sets.gather(1, argmax[:, None]).float().sum())
    n = max(len(rows), 1)
    return {name: value / n for name, value in sums.items()}


def batch(
    demos: Demonstrations, idx: np.ndarray, device: torch.device, instruction_ids: np.ndarray | None = None
):
    ids = demos.instruction_ids if instruction_ids is None else instruction_ids
    obs = torch.as_tensor(demos.observations[idx], device=device)
    instructions = [demos.instructions[i] for i in ids[idx]]
    actions = torch.as_tensor(demos.actions[idx], device=device)
    actions = actions.long() if actions.dtype == torch.int64 else actions.float()
    return obs, instructions, actions


def train(
    args: TrainSettings,
    *,
    env_id: str | None = None,
    tasks: Sequence[str] | None = None,
    make_env: EnvFactory | None = None,
    command: str | None = None,
    collect_command: str | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> Prior:
    """Train, validate, evaluate and save a prior as ``args`` says; return it.

    Args:
        env_id: the environment the prior is for, recorded in its config (``load_prior(env_id=...)``
            checks it).
        tasks: the tasks it covers, recorded in its config (``load_prior(tasks=...)`` checks them) and
            evaluated, ``args.eval_episodes`` episodes each; ``None``: an environment without tasks.
        make_env: makes the evaluation envs (:data:`priors.evaluation.EnvFactory`); needed unless
            ``args.eval_episodes`` is 0.
        command: the command line, recorded in the prior's provenance.
        collect_command: the command that collects ``args.dataset``, named if it is missing.
        on_epoch: called with the epoch number and its validation metrics.
    """
    if args.eval_episodes and make_env is None:
        raise ValueError("evaluating the prior as a policy (eval_episodes > 0) needs make_env")
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    demos = load_demonstrations(
        args.dataset, successful_only=args.successful_only, collect_command=collect_command
    )
    bad = ~np.isfinite(demos.observations).all(axis=1) | ~np.isfinite(
        demos.actions.reshape(len(demos), -1)
    ).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {len(demos)} steps of {args.dataset!r} hold NaN or inf observations or actions; "
            "collect the demonstrations again (overwriting them)"
        )
    train_rows, val_rows = split_by_episode(demos, args.val_fraction, args.seed)
    if args.exclude_tasks:
        unknown = sorted(set(args.exclude_tasks) - set(demos.tasks))
        if unknown or set(args.exclude_tasks) >= set(demos.tasks):
            raise ValueError(
                f"--exclude-tasks {' '.join(args.exclude_tasks)}: "
                + (f"{unknown} are not tasks of {args.dataset!r}" if unknown else "that leaves no task")
                + f" (its tasks: {', '.join(demos.tasks)})"
            )
        kept = ~np.isin(demos.task_ids, [demos.tasks.index(t) for t in args.exclude_tasks])
        train_rows, val_rows = train_rows[kept[train_rows]], val_rows[kept[val_rows]]
    # The kind's own options, only where given: build_prior refuses those that do not apply to the kind.
    kind_options = {
        "quantization": args.quantization,
        "n_obs_tokens": args.n_obs_tokens,
        "lm_layers": args.lm_layers,
        "lora": LoraSettings(r=args.lora_r, alpha=2 * args.lora_r) if args.lora_r else None,
        "lm_random_init_seed": 0 if args.random_lm else None,
    }
    prior = build_prior(
        args.kind,
        observation_space=demos.observation_space,
        action_space=demos.action_space,
        lm=args.lm,
        device=device,
        observation_dims=args.observation_dims,
        env_id=env_id,
        tasks=None if tasks is None else list(tasks),
        hidden_size=args.hidden_size,
        seed=args.seed,
        log_std_min=args.log_std_min,
        **{name: value for name, value in kind_options.items() if value is not None},
    )
    if args.token_dropout:
        if not hasattr(prior, "token_dropout"):
            raise ValueError(
                f"--token-dropout applies to the gru and lm-instruction priors, not {args.kind!r}"
            )
        prior.token_dropout = args.token_dropout
    dims = prior.config.obs_dim
    train_obs = demos.observations[train_rows][:, :dims]
    prior.set_normalization(train_obs.mean(0), train_obs.std(0))
    optimizer = torch.optim.AdamW(
        prior.trainable_parameters(), lr=args.learning_rate, weight_decay=args.weight_decay
    )
    state_path, loop = checkpoint_path(args.output), LoopState()
    if args.resume:
        loop = load_state(state_path, args, prior, optimizer, rng)
    loop.run_name = (
        loop.run_name
        or f"prior__{args.dataset.replace('/', '-')}__{args.kind}__{args.seed}__{int(time.time())}"
    )
    writer = SummaryWriter(
        f"{args.runs_dir}/{loop.run_name}", purge_step=loop.step + 1 if loop.epoch else None
    )
    batches = grouped_batches(
        train_rows, demos.instruction_ids, args.batch_size, args.instructions_per_batch, rng
    )
    steps_per_epoch = max(1, len(train_rows) // args.batch_size)
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.max_steps_per_epoch)

    use_sets = demos.action_sets is not None and prior.config.is_discrete
    selection = "val_set_nll" if use_sets else "val_nll"
    val_instruction_ids = demos.split_instruction_ids.get("validation")
    start = time.time() - loop.elapsed
    metrics: dict[str, float] = {}
    for epoch in (
        itertools.count(loop.epoch + 1) if args.epochs is None else range(loop.epoch + 1, args.epochs + 1)
    ):
        prior.train()
        # disable=None: a progress bar on a terminal, nothing in logs and pipes
        progress = tqdm(
            range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs or '-'}", leave=False, disable=None
        )
        for _ in progress:
            idx = next(batches)
            obs, instructions, actions = batch(demos, idx, device)
            if use_sets:
                loss = -prior.set_log_prob(obs, instructions, demos.action_sets[idx]).mean()
            else:
                loss = prior.nll(obs, instructions, actions)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training NLL became {loss.item()} at step {loop.step}: lower --learning-rate "
                    "(the demonstrations themselves are finite)"
                )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(prior.trainable_parameters(), 1.0)
            optimizer.step()
            loop.step += 1
            writer.add_scalar(
                "prior/train_set_nll" if use_sets else "prior/train_nll", loss.item(), loop.step
            )
            progress.set_postfix(nll=f"{loss.item():.3f}")
        if len(val_rows):
            metrics = validate(prior, demos, val_rows, instruction_ids=val_instruction_ids)
        else:
            metrics = {selection: float(loss)}
        for name, value in metrics.items():
            writer.add_scalar(f"prior/{name}", value, loop.step)
        logger.info("epoch %d: %s", epoch, metrics)
        loop.epoch, loop.elapsed = epoch, time.time() - start
        if metrics[selection] < loop.best - 1e-4:
            loop.best, loop.stale = metrics[selection], 0
            loop.best_state = {k: v.clone() for k, v in prior.trainable_state_dict().items()}
            loop.best_metrics = dict(metrics, epoch=epoch)
        else:
            loop.stale += 1
        save_state(state_path, args, prior, optimizer, rng, loop)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if loop.stale >= args.patience:
            logger.info("early stop after epoch %d (best epoch %d)", epoch, loop.best_metrics["epoch"])
            break
        if args.max_minutes is not None and loop.elapsed > 60 * args.max_minutes:
            loop.best_metrics["stopped_by_time_budget"] = 1.0
            logger.info("time budget of %s min spent after epoch %d", args.max_minutes, epoch)
            break
    best_metrics = loop.best_metrics
    prior.load_state_dict(loop.best_state, strict=False)
    prior.eval()
    result = {k: round(float(v), 4) for k, v in best_metrics.items()}
    if "test" in demos.split_instruction_ids and len(val_rows):
        # Reported only: the validation episodes with their test phrasings, never used to select.
        test = validate(prior, demos, val_rows, instruction_ids=demos.split_instruction_ids["test"])
        result.update({f"test_{k.removeprefix('val_')}": round(float(v), 4) for k, v in test.items()})
    result.update(
        train_steps=int(len(train_rows)),
        val_steps=int(len(val_rows)),
        expert_success_rate=round(demos.success_rate, 4),
        train_seconds=round(time.time() - start, 1),
    )
    if args.eval_episodes:
        rates = success_by_split(
            prior,
            make_env,
            tasks=tasks,
            episodes=args.eval_episodes,
            seed=args.seed,
            max_episode_steps=args.eval_max_episode_steps,
        )
        for name, rate in rates.items():
            result[name] = round(rate, 4)
            writer.add_scalar(f"prior/{name}", rate, loop.step)
    writer.close()
    prior.config = dataclasses.replace(
        prior.config,
        provenance=Provenance(
            command=command,
            metrics=result,
            dataset=args.dataset,
            instruction_split={
                "trained_on": "train",
                "selected_on": "validation" if val_instruction_ids is not None else "train",
                "held_out": "heldout",
            },
        ),
    )
    save_prior(prior, args.output)
    state_path.unlink(missing_ok=True)
    if args.push_to_hub:
        push_prior_to_hub(args.output, args.push_to_hub)
    return prior
