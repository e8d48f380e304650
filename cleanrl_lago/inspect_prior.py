"""See what a prior wants: PNGs of its action distribution against the scripted expert's.

    python -m cleanrl_lago.inspect_prior clevr-robot-smollm2 --scenes 2 --out docs/priors
    python -m cleanrl_lago.inspect_prior metaworld-mt10-smollm2 --tasks reach-v3 push-v3 --out docs/priors

CLEVR-Robot: one PNG per scene (``clevr_scene<seed>.png``; scene ``i`` is the env's reset with
``--seed + i``), three panels of the same scene: the env's instruction, a paraphrase (the next template
of ``--split``) and the swapped goal (balls A and B exchanged, the instruction's own template). Each
panel draws the top-down table with one arrow per push (from the pushed ball, in the push direction),
its width growing with the prior's probability and its opacity relative to the panel's most likely
push; the expert's good pushes (:func:`cleanrl_lago.envs.clevr_expert.expert_labels` for the panel's
goal) are orange, and the title gives the prior's probability mass on them.

Meta-World: one PNG per task (``metaworld_<task>.png``): one scripted-expert episode (env and reset
seeded with ``--seed``, the expert's first ``--split`` phrasing, run to ten steps after its first
success or ``--max-steps``), the prior's mean and mean +- one standard deviation for each of the four
action dimensions against the expert's actions.

Needs matplotlib (a dev dependency: ``pip install matplotlib``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import tyro
from priors import Prior, Quantization, load_prior

from cleanrl_lago.envs.clevr_expert import expert_labels
from cleanrl_lago.envs.clevr_robot import (
    BALL_RADIUS,
    COLORS,
    INSTRUCTION_SPLITS,
    PUSH_DIRECTIONS,
    RELATION_DIRECTIONS,
    RELATION_MAX_DIST,
    WALL_X,
    WALL_Y_BEHIND,
    WALL_Y_FRONT,
    instruction_text,
    relation_holds,
    split_templates,
)
from cleanrl_lago.envs.metaworld_tasks import SPLITS as METAWORLD_SPLITS
from cleanrl_lago.envs.metaworld_tasks import make_metaworld_env, task_instructions
from cleanrl_lago.envs.prior_envs import CLEVR_ENV_ID, prior_environment
from cleanrl_lago.utils.cli import cli

STEPS_AFTER_SUCCESS = 10
"""A Meta-World episode ends this many steps after the expert's first success (as the demonstrations)."""
ACTION_NAMES = ("dx", "dy", "dz", "gripper")
ARROW_LENGTH = 0.26
"""Length of a push arrow from the ball's centre (an unobstructed push moves a ball about 0.24-0.27)."""
PANEL_KINDS = ("instruction", "paraphrase", "swapped goal")


@dataclass
class Args:
    prior: tyro.conf.Positional[str]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a shipped prior"""
    out: str = "runs/inspect"
    """folder the PNGs are written to (created if missing)"""
    seed: int = 0
    """CLEVR-Robot: scene i is the reset with seed + i; Meta-World: the env's and the episode's seed"""
    scenes: int = 2
    """CLEVR-Robot: how many scenes (one PNG each)"""
    split: str = "train"
    """instruction phrasings (train, validation, test; heldout = test)"""
    tasks: tuple[str, ...] = ()
    """Meta-World: the tasks to plot (default: the prior's first task)"""
    max_steps: int = 500
    """Meta-World: longest expert episode"""
    dpi: int = 90
    """resolution of the PNGs"""
    quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the prior's own)"""
    device: str = "cpu"
    """where the prior runs"""


# ----- the numbers drawn -------------------------------------------------------------------------
@dataclass
class ClevrPanel:
    """One panel of a CLEVR-Robot figure: a scene, an instruction and what the prior makes of it."""

    kind: str
    """``"instruction"``, ``"paraphrase"`` or ``"swapped goal"``"""
    instruction: str
    goal: tuple[int, int, int]
    """(ball A, relation, ball B) the instruction asks for"""
    positions: np.ndarray
    """[5, 2] ball centres"""
    probs: np.ndarray
    """[40] the prior's probability of each push (softmax of ``Prior.predict``)"""
    good: np.ndarray
    """[40] bool: the expert's good pushes for this panel's goal"""
    good_mass: float
    """the prior's probability of the good pushes"""


@dataclass
class MetaWorldEpisode:
    """One expert episode of a Meta-World task and the prior's Gaussian along it."""

    task: str
    instruction: str
    observations: np.ndarray
    """[T, 39] the observations the expert acted on"""
    expert_actions: np.ndarray
    """[T, 4] the expert's actions, clipped to the action space (as executed)"""
    means: np.ndarray
    """[T, 4] the prior's mean action"""
    stds: np.ndarray
    """[T, 4] the prior's standard deviation"""
    first_success: int | None
    """the first step (0-based) after which the env reported success, or None"""


def _prior_probs(prior: Prior, obs: np.ndarray, instruction: str) -> np.ndarray:
    logits = prior.predict(torch.as_tensor(obs[None]), instruction)
    return torch.softmax(logits.float(), dim=-1)[0].cpu().numpy().astype(np.float64)


def clevr_panels(prior: Prior, seed: int, split: str = "train") -> list[ClevrPanel]:
    """The three panels of the scene of ``reset(seed=seed)`` with ``split`` phrasings: the env's
    instruction, a paraphrase (the split's next template) and the swapped goal (same template)."""
    env = gym.make(CLEVR_ENV_ID, instruction_split=split).unwrapped
    try:
        obs, info = env.reset(seed=seed)
        a, rel, b = goal = env.goal
        positions = env.ball_positions()
        templates = split_templates(split)
        index = next(i for i, t in enumerate(templates) if instruction_text(goal, t) == info["instruction"])
        swapped = (b, rel, a)
        cases = [
            (PANEL_KINDS[0], goal, templates[index]),
            (PANEL_KINDS[1], goal, templates[(index + 1) % len(templates)]),
            (PANEL_KINDS[2], swapped, templates[index]),
        ]
        panels = []
        for kind, panel_goal, template in cases:
            # The same scene at rest with the panel's goal (the observation's goal encoding follows it).
            obs, _ = env.reset(options={"goal": panel_goal, "ball_positions": positions})
            _, good = expert_labels(env)
            instruction = instruction_text(panel_goal, template)
            probs = _prior_probs(prior, obs, instruction)
            panels.append(ClevrPanel(kind, instruction, panel_goal, positions, probs, good, float(probs[good].sum())))
        return panels
    finally:
        env.close()


def metaworld_episode(prior: Prior, task: str, seed: int = 0, split: str = "train", max_steps: int = 500) -> MetaWorldEpisode:
    """Run ``task``'s scripted expert (``metaworld.policies``) for one episode (env made with
    ``seed``, reset with ``seed``) and evaluate the prior on every observation with the task's first
    ``split`` phrasing."""
    from metaworld.policies import ENV_POLICY_MAP

    instruction = task_instructions(task, split)[0]
    env = make_metaworld_env(task, seed=seed, max_episode_steps=max_steps)
    policy = ENV_POLICY_MAP[task]()
    low, high = env.action_space.low, env.action_space.high
    observations, actions, first_success = [], [], None
    try:
        obs, _ = env.reset(seed=seed)
        while True:
            action = np.clip(policy.get_action(obs), low, high).astype(np.float32)
            observations.append(np.asarray(obs, dtype=np.float32))
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            if first_success is None and info.get("success"):
                first_success = len(actions) - 1
            if first_success is not None and len(actions) - 1 - first_success >= STEPS_AFTER_SUCCESS:
                break
            if terminated or truncated:
                break
    finally:
        env.close()
    observations = np.stack(observations)
    params = prior.predict(torch.as_tensor(observations), instruction).float().cpu().numpy()
    mean, log_std = np.split(params.astype(np.float64), 2, axis=-1)
    return MetaWorldEpisode(task, instruction, observations, np.stack(actions), mean, np.exp(log_std), first_success)


# ----- drawing -----------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "error: inspect_prior draws with matplotlib, which is not installed: pip install matplotlib"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_clevr_panel(ax, panel: ClevrPanel) -> None:
    from matplotlib.patches import Circle, Rectangle, Wedge

    ax.add_patch(Rectangle((-WALL_X, WALL_Y_BEHIND), 2 * WALL_X, WALL_Y_FRONT - WALL_Y_BEHIND, fill=False, lw=2.5, ec="0.3"))
    a, rel, b = panel.goal
    # Where ball A's centre must end up: the 90-degree sector around the relation's direction from B.
    angle = np.degrees(np.arctan2(*RELATION_DIRECTIONS[rel][::-1]))
    ax.add_patch(Wedge(panel.positions[b], RELATION_MAX_DIST, angle - 45, angle + 45, color="gold", alpha=0.25, lw=0))
    for ball, (color, xy) in enumerate(zip(COLORS, panel.positions, strict=True)):
        edge = {a: ("black", 3.0, "-"), b: ("black", 2.0, "--")}.get(ball, ("0.4", 0.8, "-"))
        ax.add_patch(Circle(xy, BALL_RADIUS, fc=color, ec=edge[0], lw=edge[1], ls=edge[2], alpha=0.55))
        if ball in (a, b):
            ax.text(*xy, "A" if ball == a else "B", ha="center", va="center", fontsize=11, weight="bold")
    top = panel.probs.max()
    for action in np.argsort(panel.probs):  # most likely drawn last, on top
        ball, direction = divmod(int(action), len(PUSH_DIRECTIONS))
        d = PUSH_DIRECTIONS[direction] / np.linalg.norm(PUSH_DIRECTIONS[direction])
        p = panel.probs[action]
        ax.arrow(
            *panel.positions[ball],
            *(ARROW_LENGTH * d),
            width=0.004 + 0.05 * p,
            head_width=0.02 + 0.09 * p,
            head_length=0.04,
            length_includes_head=True,
            color="darkorange" if panel.good[action] else "black",
            alpha=min(1.0, float(0.08 + 0.92 * p / top)),
            lw=0,
        )
    ax.set_xlim(-WALL_X - 0.05, WALL_X + 0.05)
    ax.set_ylim(WALL_Y_BEHIND - 0.05, WALL_Y_FRONT + 0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    title = "\n".join(textwrap.wrap(f"{panel.kind}: {panel.instruction}", 46))
    holds = " (goal holds already)" if relation_holds(panel.positions, panel.goal) else ""
    ax.set_title(f"{title}\nmass on good pushes {panel.good_mass:.2f} ({panel.good.sum()} good){holds}", fontsize=9)


def draw_clevr(panels: list[ClevrPanel], path: Path, dpi: int, prior_name: str, seed: int) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.9), layout="constrained")
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=True):
        _draw_clevr_panel(ax, panel)
    fig.supxlabel(
        f"{prior_name}, scene seed {seed}. Arrows: the 40 pushes (width ~ probability, opacity relative to the most "
        "likely); orange: the expert's good pushes; ball A solid, B dashed; gold sector: where A must go.",
        fontsize=8,
    )
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def draw_metaworld(episode: MetaWorldEpisode, path: Path, dpi: int, prior_name: str) -> None:
    plt = _pyplot()
    steps = np.arange(len(episode.expert_actions))
    fig, axes = plt.subplots(len(ACTION_NAMES), 1, figsize=(8, 7.5), sharex=True)
    for k, ax in enumerate(axes):
        mean, std = episode.means[:, k], episode.stds[:, k]
        ax.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.25, lw=0, label="prior mean ± std")
        ax.plot(steps, mean, color="tab:blue", lw=1.5, label="prior mean")
        ax.plot(steps, episode.expert_actions[:, k], color="black", lw=1.2, ls="--", label="expert")
        if episode.first_success is not None:
            ax.axvline(episode.first_success, color="tab:green", lw=1, alpha=0.7)
        ax.set_ylim(-1.6, 1.6)
        ax.set_ylabel(ACTION_NAMES[k])
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("step of the expert episode" + ("" if episode.first_success is None else " (green: first success)"))
    fig.suptitle(f"{prior_name} on {episode.task}: {episode.instruction!r}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# ----- command -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> list[Path]:
    args = cli(Args, args=argv, description=__doc__.splitlines()[0])
    for name in ("scenes", "max_steps", "dpi"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)} is out of range: it must be >= 1")
    _pyplot()  # fail before loading the prior when matplotlib is missing
    prior = load_prior(args.prior, device=args.device, quantization=args.quantization)
    env = prior_environment(prior.config.env_id, prior.config.tasks)
    out = Path(args.out)
    name = Path(args.prior).name
    written = []
    if env.tasks is None:
        if args.tasks:
            raise ValueError(f"--tasks is for Meta-World priors; {args.prior!r} is a {env.env_id} prior")
        if args.split not in INSTRUCTION_SPLITS:
            raise ValueError(f"--split {args.split!r}: CLEVR-Robot splits are {list(INSTRUCTION_SPLITS)}")
        out.mkdir(parents=True, exist_ok=True)
        for i in range(args.scenes):
            seed = args.seed + i
            path = out / f"clevr_scene{seed}.png"
            panels = clevr_panels(prior, seed, args.split)
            draw_clevr(panels, path, args.dpi, name, seed)
            masses = ", ".join(f"{p.kind} {p.good_mass:.2f}" for p in panels)
            print(f"{path}: mass on good pushes: {masses}")
            written.append(path)
        return written
    if args.split not in METAWORLD_SPLITS:
        raise ValueError(f"--split {args.split!r}: Meta-World splits are {list(METAWORLD_SPLITS)}")
    tasks = list(args.tasks) or env.tasks[:1]
    unknown = [t for t in tasks if t not in env.tasks]
    if unknown:
        raise ValueError(f"--tasks {unknown}: this prior was trained on {env.tasks}")
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        path = out / f"metaworld_{task}.png"
        episode = metaworld_episode(prior, task, args.seed, args.split, args.max_steps)
        draw_metaworld(episode, path, args.dpi, name)
        error = np.abs(episode.means - episode.expert_actions).mean(0)
        print(
            f"{path}: {len(episode.expert_actions)} steps, first success at step {episode.first_success}; "
            f"mean |prior mean - expert| per dim {np.round(error, 3).tolist()}"
        )
        written.append(path)
    return written


if __name__ == "__main__":
    main()
