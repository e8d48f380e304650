"""Meta-World v3 tasks with language instructions, and a one-call environment constructor.

Every one of the 50 Meta-World v3 tasks has instructions in two splits that share no phrasing:
``"train"`` (what priors are trained on) and ``"heldout"`` (paraphrases training never sees).
The MT10 tasks have hand-written phrasings (4 train, 2 held-out); the other 40 tasks render a
short description of the task with templates (3 train, 2 held-out).

``make_metaworld_env`` builds Meta-World's ``Meta-World/MT1`` env for one task and fixes
two things of Meta-World 3.1.1 (see ``docs/demonstrations.md``):

* ``reset(seed=...)`` is ignored there: each reset draws one of the task's 50 object/goal
  variants from an RNG seeded once at ``make``. Here ``reset(seed=s)`` re-seeds that RNG first,
  so an episode is reproducible from ``(seed, s)``.
* the declared observation space gives the goal (last 3 entries) the bounds ``[0, 0]`` of the
  goal-hidden setting although the goal is observed. Here it has the task's goal bounds.
"""

from __future__ import annotations

import difflib

import gymnasium as gym
import metaworld  # noqa: F401  (registers the Meta-World/* environments)
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3

ALL_TASKS: tuple[str, ...] = tuple(ALL_V3_ENVIRONMENTS)
MT10_TASKS: tuple[str, ...] = tuple(MT10_V3)
SPLITS: tuple[str, ...] = ("train", "heldout")

# Hand-written phrasings of the MT10 tasks.
_MT10_INSTRUCTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "reach-v3": {
        "train": (
            "Reach the goal position.",
            "Move the gripper to the target point.",
            "Bring the robot hand to the goal location.",
            "Extend the arm so that the gripper reaches the target.",
        ),
        "heldout": ("Guide the end effector to the marked spot.", "Put your hand on the goal."),
    },
    "push-v3": {
        "train": (
            "Push the puck to the goal.",
            "Slide the puck over to the target position.",
            "Shove the puck along the table to the goal.",
            "Move the puck to the target by pushing it.",
        ),
        "heldout": (
            "Nudge the puck until it sits on the goal.",
            "Push the small cylinder onto the target spot.",
        ),
    },
    "pick-place-v3": {
        "train": (
            "Pick up the puck and place it at the goal.",
            "Grasp the puck, lift it and bring it to the target.",
            "Pick the object up and move it to the goal position.",
            "Lift the puck and carry it to the target location.",
        ),
        "heldout": (
            "Grab the puck and hold it at the marked goal.",
            "Take the object off the table and bring it to the target.",
        ),
    },
    "door-open-v3": {
        "train": (
            "Open the door.",
            "Pull the door open.",
            "Swing the door open by its handle.",
            "Grab the door handle and open the door.",
        ),
        "heldout": ("Get that door open.", "Rotate the door on its hinge until it is open."),
    },
    "drawer-open-v3": {
        "train": (
            "Open the drawer.",
            "Pull the drawer out.",
            "Slide the drawer open.",
            "Grab the drawer handle and pull it open.",
        ),
        "heldout": ("Get the drawer open.", "Draw the drawer towards you until it is open."),
    },
    "drawer-close-v3": {
        "train": (
            "Close the drawer.",
            "Push the drawer shut.",
            "Slide the drawer closed.",
            "Push the open drawer back in.",
        ),
        "heldout": ("Shut that drawer.", "Press on the drawer until it is fully closed."),
    },
    "button-press-topdown-v3": {
        "train": (
            "Press the button from the top.",
            "Push the button down from above.",
            "Press down on the button.",
            "Lower the gripper onto the button and press it.",
        ),
        "heldout": ("Hit the button from above.", "Push the top of the button downwards."),
    },
    "peg-insert-side-v3": {
        "train": (
            "Insert the peg into the hole from the side.",
            "Pick up the peg and push it into the side hole.",
            "Put the peg sideways into the hole.",
            "Grasp the peg and slide it into the hole in the box.",
        ),
        "heldout": ("Fit the peg into the opening on the side.", "Plug the peg horizontally into the hole."),
    },
    "window-open-v3": {
        "train": (
            "Open the window.",
            "Slide the window open.",
            "Push the window sideways to open it.",
            "Move the window pane to open it.",
        ),
        "heldout": ("Get the window open.", "Slide the window along its rail until it is open."),
    },
    "window-close-v3": {
        "train": (
            "Close the window.",
            "Slide the window shut.",
            "Push the window sideways to close it.",
            "Move the window pane to close it.",
        ),
        "heldout": ("Shut the window.", "Slide the window along its rail until it is closed."),
    },
}

# Short descriptions of the other 40 tasks, rendered with the templates below.
_DESCRIPTIONS: dict[str, str] = {
    "assembly-v3": "put the ring onto the peg",
    "basketball-v3": "dunk the ball into the basket",
    "bin-picking-v3": "move the cube from one bin into the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-wall-v3": "press the button from the top, reaching over the wall",
    "button-press-v3": "press the button from the front",
    "button-press-wall-v3": "press the button from the front, reaching past the wall",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug away from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "take the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock down",
    "door-unlock-v3": "unlock the door by turning the lock up",
    "hand-insert-v3": "insert the hand into the hole",
    "faucet-open-v3": "open the faucet",
    "faucet-close-v3": "close the faucet",
    "hammer-v3": "hammer the nail into the wall",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "pick-out-of-hole-v3": "pick the peg out of the hole",
    "plate-slide-v3": "slide the plate into the goal",
    "plate-slide-side-v3": "slide the plate sideways into the goal",
    "plate-slide-back-v3": "slide the plate back out of the goal",
    "plate-slide-back-side-v3": "slide the plate sideways back out of the goal",
    "peg-unplug-side-v3": "unplug the peg from the side",
    "soccer-v3": "kick the ball into the goal",
    "stick-push-v3": "grasp the stick and push the box with it",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "push-wall-v3": "push the puck around the wall to the goal",
    "push-back-v3": "push the puck backwards to the goal",
    "reach-wall-v3": "reach the goal position over the wall",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
}

DESCRIPTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": ("{Desc}.", "Please {desc}.", "Your job is to {desc}."),
    "heldout": ("Could you {desc}?", "I need you to {desc}."),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is a Meta-World v3 task name, else raise a ValueError naming close matches."""
    if task in ALL_V3_ENVIRONMENTS:
        return task
    close = difflib.get_close_matches(task, ALL_TASKS, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown Meta-World task {task!r}.{hint} Valid tasks: {', '.join(sorted(ALL_TASKS))}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(
            f"unknown instruction split {split!r}: choose one of {list(SPLITS)} "
            "('train' phrasings for training, 'heldout' phrasings training never sees)"
        )


def task_instructions(task: str, split: str = "train") -> list[str]:
    """The instructions of a Meta-World v3 task in one split (``"train"`` or ``"heldout"``)."""
    check_task(task)
    _check_split(split)
    if task in _MT10_INSTRUCTIONS:
        return list(_MT10_INSTRUCTIONS[task][split])
    desc = _DESCRIPTIONS[task]
    return [t.format(desc=desc, Desc=desc[0].upper() + desc[1:]) for t in DESCRIPTION_TEMPLATES[split]]


def resolve_tasks(spec: str) -> list[str]:
    """Task list from ``"mt10"``, ``"mt50"`` (all 50 tasks) or comma-separated task names."""
    key = spec.strip().lower()
    if key == "mt10":
        return list(MT10_TASKS)
    if key == "mt50":
        return list(ALL_TASKS)
    tasks = [t.strip() for t in spec.split(",") if t.strip()]
    if not tasks:
        raise ValueError("no Meta-World task given: use 'mt10', 'mt50' or comma-separated task names")
    return [check_task(t) for t in tasks]


def _observed_goal_space(base) -> gym.spaces.Box:
    """The observation space of a Meta-World env whose goal (the last 3 entries) is observed."""
    space = base.sawyer_observation_space
    low, high = space.low.copy(), space.high.copy()
    low[-3:], high[-3:] = base.goal_space.low, base.goal_space.high
    return gym.spaces.Box(low, high, dtype=space.dtype)


def observation_space(tasks: list[str], dtype=np.float32) -> gym.spaces.Box:
    """One observation space for several tasks: the union of their bounds (only the goal bounds differ)."""
    lows, highs = [], []
    for task in tasks:
        env = ALL_V3_ENVIRONMENTS[check_task(task)]()
        space = _observed_goal_space(env)
        env.close()
        lows.append(space.low)
        highs.append(space.high)
    low, high = np.min(lows, axis=0).astype(dtype), np.max(highs, axis=0).astype(dtype)
    return gym.spaces.Box(low, high, dtype=dtype)


class _SeededTaskReset(gym.Wrapper):
    """Honours ``reset(seed=...)`` and declares the observed goal's bounds (see the module docstring)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = _observed_goal_space(env.unwrapped)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            # Meta-World draws the task variant from this RNG before its own reset ignores `seed`.
            self.env.unwrapped.seed(seed)
        return self.env.reset(options=options)


def make_metaworld_env(
    task: str,
    seed: int,
    render_mode: str | None = None,
    camera_name: str | None = "corner",
    width: int = 480,
    height: int = 480,
    max_episode_steps: int | None = None,
    terminate_on_success: bool = False,
) -> gym.Env:
    """One Meta-World v3 task as a gymnasium env (obs Box(39,) float64, actions Box(-1, 1, (4,))).

    Args:
        task: a v3 task name such as ``"reach-v3"`` (see ``ALL_TASKS``).
        seed: seeds the task's 50 object/goal variants and the env's RNG.
        render_mode: ``None``, ``"rgb_array"`` or ``"depth_array"`` (needs ``MUJOCO_GL``, e.g. osmesa or egl).
        camera_name: Meta-World camera for rendering: ``"corner"``, ``"corner2"``, ``"corner3"``,
            ``"topview"``, ``"behindGripper"``, ``"gripperPOV"``.
        width, height: size of rendered frames.
        max_episode_steps: time limit (default: Meta-World's 500).
        terminate_on_success: end the episode on the first step with ``info["success"]``.

    The env reports episode statistics in ``info["episode"]`` itself (Meta-World always wraps
    ``RecordEpisodeStatistics``): do not add another.
    """
    check_task(task)
    # Meta-World's own constructor rather than gym.make: gym.make would keep max_episode_steps for an
    # outer TimeLimit, so Meta-World's inner RecordEpisodeStatistics (which it always adds) would never
    # see an episode end; built this way there is one time limit and info["episode"] is right.
    env = gym.spec("Meta-World/MT1").entry_point(
        env_name=task,
        seed=seed,
        render_mode=render_mode,
        camera_name=camera_name if render_mode is not None else None,
        width=width,
        height=height,
        max_episode_steps=max_episode_steps,
        terminate_on_success=terminate_on_success,
    )
    return _SeededTaskReset(env)


def env_tasks(env_id: str, num_envs: int) -> list[str]:
    """The task of each env: one task repeated, or the MT10 tasks in turn."""
    if env_id.lower() != "mt10":
        return [check_task(env_id)] * num_envs
    if num_envs % len(MT10_TASKS):
        raise ValueError(f"--env-id MT10 needs --num-envs a multiple of {len(MT10_TASKS)}, got {num_envs}")
    return [MT10_TASKS[i % len(MT10_TASKS)] for i in range(num_envs)]


def task_one_hot(tasks: list[str]) -> np.ndarray | None:
    """For MT10, the policy is told its task as a one-hot (Meta-World's MT10 convention)."""
    if len(set(tasks)) == 1:
        return None
    return np.eye(len(MT10_TASKS), dtype=np.float32)[[MT10_TASKS.index(t) for t in tasks]]


def policy_input(raw_obs: np.ndarray, one_hot: np.ndarray | None) -> np.ndarray:
    """The networks' input for a batch of raw observations: float32, and the task one-hot for MT10."""
    x = np.asarray(raw_obs, dtype=np.float32)
    return x if one_hot is None else np.concatenate([x, one_hot], axis=1)
