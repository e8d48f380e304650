"""Meta-World v3 tasks with language instructions, and a one-call environment constructor.

Every one of the 50 Meta-World v3 tasks has instructions in three splits that share no phrasing
and no sentence frame: ``"train"`` (what priors are trained on), ``"validation"`` (model selection
and early stopping only) and ``"test"`` (reported only; ``"heldout"``, the earlier name of these
paraphrases, is an alias). The MT10 tasks have hand-written phrasings (16 train, 4 validation,
6 test); the other 40 tasks render two short descriptions of the task (one a rewording of the
other) with templates (12 train, 3 validation, 4 test).

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

from cleanrl_lago.envs.splits import resolve_split, with_aliases

ALL_TASKS: tuple[str, ...] = tuple(ALL_V3_ENVIRONMENTS)
MT10_TASKS: tuple[str, ...] = tuple(MT10_V3)
SPLITS: tuple[str, ...] = with_aliases(("train", "validation", "test"))
"""Every accepted split name (:mod:`cleanrl_lago.envs.splits`): the three splits, then ``"heldout"``."""

# Hand-written phrasings of the MT10 tasks. Within a task the splits share no sentence frame:
# "Please ...", "Can you ...?", "Your job is to ...", "Go ahead and ...", "Try to ...", "Let's ...",
# "Use the gripper to ...", "..., please." are train's; "Would you ...?", "I'd like ...",
# "Next up: ..." validation's; "Could you ...?", "I need ...", "How about ...?" test's.
_MT10_INSTRUCTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "reach-v3": {
        "train": (
            "Reach the goal position.",
            "Move the gripper to the target point.",
            "Bring the robot hand to the goal location.",
            "Extend the arm so that the gripper reaches the target.",
            "Please move your gripper to the goal.",
            "Can you reach for the target position?",
            "Your job is to get the gripper to the goal point.",
            "Go ahead and touch the target point with the gripper.",
            "Send the arm to the target location.",
            "Position the gripper at the goal.",
            "Reach out to the target, please.",
            "Try to bring the gripper as close to the goal as you can.",
            "The gripper needs to end up at the goal location.",
            "Let's reach over to the goal position with the arm.",
            "Move the arm until its fingers are at the target.",
            "To the goal position, move the gripper.",
        ),
        "validation": (
            "Would you move the arm's gripper to the destination point?",
            "I'd like the gripper to be at the goal now.",
            "Next up: carry the gripper over to where the goal is.",
            "Head for the target location with the robot's hand.",
        ),
        "test": (
            "Guide the end effector to the marked spot.",
            "Put your hand on the goal.",
            "Could you get the claw over to the target?",
            "I need the end effector sitting at the goal coordinates.",
            "How about stretching out until you touch the goal point?",
            "Aim the arm at the target and go there.",
        ),
    },
    "push-v3": {
        "train": (
            "Push the puck to the goal.",
            "Slide the puck over to the target position.",
            "Shove the puck along the table to the goal.",
            "Move the puck to the target by pushing it.",
            "Please push the puck onto the goal.",
            "Can you slide the puck to the target?",
            "Your job is to push the puck to the goal location.",
            "Go ahead and shove the puck over to the target.",
            "Push the puck across the table until it reaches the goal.",
            "Slide the puck to the goal, please.",
            "Try to push the puck all the way to the target.",
            "The puck should end up on the goal after you push it.",
            "Let's push the puck over to the target location.",
            "Use the gripper to push the puck to the goal.",
            "Keep the puck on the table and slide it to the target.",
            "With the gripper behind it, push the puck along the surface to the goal position.",
        ),
        "validation": (
            "Would you slide the puck along until it is at the target?",
            "I'd like the puck pushed over to the goal.",
            "Next up: drive the puck across the table to the target.",
            "Steer the puck into the goal region by pushing.",
        ),
        "test": (
            "Nudge the puck until it sits on the goal.",
            "Push the small cylinder onto the target spot.",
            "Could you move the hockey puck to the goal without lifting it?",
            "I need that disk pushed to the target.",
            "How about sliding the puck over to where the goal is marked?",
            "Propel the puck across the tabletop toward the goal until it gets there.",
        ),
    },
    "pick-place-v3": {
        "train": (
            "Pick up the puck and place it at the goal.",
            "Grasp the puck, lift it and bring it to the target.",
            "Pick the object up and move it to the goal position.",
            "Lift the puck and carry it to the target location.",
            "Please pick up the puck and put it at the goal.",
            "Can you lift the puck and move it to the target?",
            "Your job is to grasp the puck and place it at the goal position.",
            "Go ahead and pick the puck up, then carry it to the target.",
            "Pick up the puck, then bring it to the goal location, please.",
            "Try to lift the puck off the table and move it to the goal.",
            "The puck should be picked up and placed at the target.",
            "Let's grasp the puck and carry it over to the goal.",
            "Use the gripper to pick up the puck and bring it to the target position.",
            "Close the gripper around the puck, raise it, and move it to the goal.",
            "Hold the puck in the gripper and transport it to the target location.",
            "Pick and place the puck at the goal.",
        ),
        "validation": (
            "Would you take hold of the puck and bring it up to the goal?",
            "I'd like the puck lifted and moved to the goal position.",
            "Next up: raise the puck from the table and deliver it to the target.",
            "Collect the puck and drop it off at the target location.",
        ),
        "test": (
            "Grab the puck and hold it at the marked goal.",
            "Take the object off the table and bring it to the target.",
            "Could you fetch the puck and hold it where the goal is?",
            "I need the disk picked up and carried to the target.",
            "How about lifting that puck and taking it to the goal?",
            "Seize the little cylinder, hoist it up and move it over to the goal point.",
        ),
    },
    "door-open-v3": {
        "train": (
            "Open the door.",
            "Pull the door open.",
            "Swing the door open by its handle.",
            "Grab the door handle and open the door.",
            "Please open the door.",
            "Can you pull the door open?",
            "Your job is to open the door.",
            "Go ahead and swing the door open.",
            "Open the door, please.",
            "Try to pull the door all the way open.",
            "The door should be open when you are done.",
            "Let's open the door by pulling its handle.",
            "Use the gripper to pull the door handle until the door opens.",
            "Take the handle of the door and pull it open.",
            "Pull on the handle so the door swings open.",
            "With the gripper on its handle, pull the door wide open.",
        ),
        "validation": (
            "Would you open the door for me?",
            "I'd like the door swung open.",
            "Next up: pull the door by its handle so it opens.",
            "Draw the door towards the robot until it stands open.",
        ),
        "test": (
            "Get that door open.",
            "Rotate the door on its hinge until it is open.",
            "Could you tug the door open?",
            "I need the door opened.",
            "How about opening the door?",
            "Pivot the door away from its frame by pulling on the knob.",
        ),
    },
    "drawer-open-v3": {
        "train": (
            "Open the drawer.",
            "Pull the drawer out.",
            "Slide the drawer open.",
            "Grab the drawer handle and pull it open.",
            "Please open the drawer.",
            "Can you pull the drawer open?",
            "Your job is to open the drawer.",
            "Go ahead and slide the drawer out.",
            "Open the drawer, please.",
            "Try to pull the drawer all the way out.",
            "The drawer should be open when you finish.",
            "Let's pull out the drawer.",
            "Use the gripper to pull the drawer's handle until the drawer is open.",
            "Hold the drawer handle and pull it towards the robot.",
            "Pull the drawer out of the cabinet.",
            "By its handle, slide the drawer out of the cabinet.",
        ),
        "validation": (
            "Would you pull the drawer open for me?",
            "I'd like the drawer opened.",
            "Next up: slide the drawer outwards as far as it goes.",
            "Withdraw the drawer from the cabinet by its handle.",
        ),
        "test": (
            "Get the drawer open.",
            "Draw the drawer towards you until it is open.",
            "Could you open that drawer?",
            "I need the drawer pulled out.",
            "How about sliding the drawer open?",
            "Tug on the drawer's knob so it comes out of the chest.",
        ),
    },
    "drawer-close-v3": {
        "train": (
            "Close the drawer.",
            "Push the drawer shut.",
            "Slide the drawer closed.",
            "Push the open drawer back in.",
            "Please close the drawer.",
            "Can you push the drawer shut?",
            "Your job is to close the drawer.",
            "Go ahead and slide the drawer back in.",
            "Close the drawer, please.",
            "Try to push the drawer all the way in.",
            "The drawer should be closed when you finish.",
            "Let's push the drawer closed.",
            "Use the gripper to push the drawer into the cabinet.",
            "Push against the front of the drawer and slide it home.",
            "Push the drawer back into the cabinet.",
            "With one push on its front, close the open drawer.",
        ),
        "validation": (
            "Would you close the drawer for me?",
            "I'd like the drawer closed.",
            "Next up: slide the drawer inwards as far as it goes.",
            "Return the drawer to its closed position.",
        ),
        "test": (
            "Shut that drawer.",
            "Press on the drawer until it is fully closed.",
            "Could you close that drawer?",
            "I need the drawer pushed in.",
            "How about shutting the drawer?",
            "Nudge the drawer back into the chest so it sits flush.",
        ),
    },
    "button-press-topdown-v3": {
        "train": (
            "Press the button from the top.",
            "Push the button down from above.",
            "Press down on the button.",
            "Lower the gripper onto the button and press it.",
            "Please press the button from above.",
            "Can you push the button down?",
            "Your job is to press the button from the top.",
            "Go ahead and press down on the button.",
            "Press the button down, please.",
            "Try to push the button all the way down from above.",
            "The button should be pressed down from the top.",
            "Let's press the button from above.",
            "Use the gripper to push the button downwards.",
            "Move the gripper over the button and push down on it.",
            "Bring the gripper down on the button to press it.",
            "Push the button down with a vertical motion.",
        ),
        "validation": (
            "Would you press the button down from overhead?",
            "I'd like the button pushed down from the top.",
            "Next up: come down on the button from above and press it.",
            "Depress the button from the top.",
        ),
        "test": (
            "Hit the button from above.",
            "Push the top of the button downwards.",
            "Could you press that button from on top?",
            "I need the button pressed from above.",
            "How about pushing the button straight down?",
            "Descend onto the switch and press it in.",
        ),
    },
    "peg-insert-side-v3": {
        "train": (
            "Insert the peg into the hole from the side.",
            "Pick up the peg and push it into the side hole.",
            "Put the peg sideways into the hole.",
            "Grasp the peg and slide it into the hole in the box.",
            "Please insert the peg into the hole from the side.",
            "Can you put the peg into the side hole?",
            "Your job is to insert the peg sideways into the hole.",
            "Go ahead and push the peg into the hole from the side.",
            "Insert the peg into the side hole, please.",
            "Try to slide the peg into the hole sideways.",
            "The peg should end up inside the hole in the side of the box.",
            "Let's pick up the peg and insert it into the hole.",
            "Use the gripper to pick up the peg and insert it sideways into the hole.",
            "Lift the peg, line it up with the hole and push it in from the side.",
            "Pick up the peg, then insert it into the box's side hole.",
            "Carry the peg to the box and slide it into the hole on its side.",
        ),
        "validation": (
            "Would you insert the peg into the hole on the side?",
            "I'd like the peg inserted into the side hole.",
            "Next up: grab the peg and stick it into the hole from the side.",
            "Thread the peg into the hole at the side of the block.",
        ),
        "test": (
            "Fit the peg into the opening on the side.",
            "Plug the peg horizontally into the hole.",
            "Could you jam the peg into the hole on the side?",
            "I need the peg pushed into the hole sideways.",
            "How about sliding the peg into the side hole?",
            "Take the stick and plug it into the slot on the box's flank.",
        ),
    },
    "window-open-v3": {
        "train": (
            "Open the window.",
            "Slide the window open.",
            "Push the window sideways to open it.",
            "Move the window pane to open it.",
            "Please open the window.",
            "Can you slide the window open?",
            "Your job is to open the window.",
            "Go ahead and push the window open.",
            "Open the window, please.",
            "Try to slide the window all the way open.",
            "The window should be open when you finish.",
            "Let's open the window by sliding it.",
            "Use the gripper to slide the window pane open.",
            "Grab the window's handle and push it sideways until the window opens.",
            "Slide the window pane to the side to open it.",
            "Sideways along its track, slide the window open.",
        ),
        "validation": (
            "Would you open the window for me?",
            "I'd like the window opened.",
            "Next up: slide the window across as far as it goes.",
            "Shift the pane aside so that the window is open.",
        ),
        "test": (
            "Get the window open.",
            "Slide the window along its rail until it is open.",
            "Could you open that window?",
            "I need the window slid open.",
            "How about opening the window?",
            "Drag the glass panel sideways to let some air in.",
        ),
    },
    "window-close-v3": {
        "train": (
            "Close the window.",
            "Slide the window shut.",
            "Push the window sideways to close it.",
            "Move the window pane to close it.",
            "Please close the window.",
            "Can you slide the window shut?",
            "Your job is to close the window.",
            "Go ahead and push the window closed.",
            "Close the window, please.",
            "Try to slide the window all the way closed.",
            "The window should be closed when you finish.",
            "Let's close the window by sliding it.",
            "Use the gripper to slide the window pane closed.",
            "Grab the window's handle and push it sideways until the window is closed.",
            "Slide the window pane to the side to close it.",
            "Sideways along its track, slide the window closed.",
        ),
        "validation": (
            "Would you close the window for me?",
            "I'd like the window closed.",
            "Next up: slide the window back across until the gap is gone.",
            "Shift the pane back so that the window is closed.",
        ),
        "test": (
            "Shut the window.",
            "Slide the window along its rail until it is closed.",
            "Could you close that window?",
            "I need the window slid shut.",
            "How about closing the window?",
            "Drag the glass panel sideways to keep the draft out.",
        ),
    },
}

# Two short descriptions of each of the other 40 tasks, the second a rewording of the first,
# rendered with the templates below ({desc} and {alt}; capitalised {Desc} and {Alt}).
_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "assembly-v3": ("put the ring onto the peg", "fit the round nut over the peg"),
    "basketball-v3": ("dunk the ball into the basket", "drop the ball through the hoop"),
    "bin-picking-v3": ("move the cube from one bin into the other", "transfer the block to the other bin"),
    "box-close-v3": ("put the lid on the box", "cover the box with its lid"),
    "button-press-topdown-wall-v3": (
        "press the button from the top, reaching over the wall",
        "reach over the wall and push the button down",
    ),
    "button-press-v3": ("press the button from the front", "push the button in horizontally"),
    "button-press-wall-v3": (
        "press the button from the front, reaching past the wall",
        "get past the wall and push the button in",
    ),
    "coffee-button-v3": ("press the button on the coffee machine", "push the coffee maker's button"),
    "coffee-pull-v3": ("pull the mug away from the coffee machine", "drag the cup back from the coffee maker"),
    "coffee-push-v3": ("push the mug under the coffee machine", "slide the cup into place beneath the coffee maker"),
    "dial-turn-v3": ("turn the dial", "rotate the knob"),
    "disassemble-v3": ("take the ring off the peg", "lift the round nut up and off the peg"),
    "door-close-v3": ("close the door", "swing the door shut"),
    "door-lock-v3": ("lock the door by turning the lock down", "turn the door's lock downwards to lock it"),
    "door-unlock-v3": ("unlock the door by turning the lock up", "turn the door's lock upwards to unlock it"),
    "hand-insert-v3": ("insert the hand into the hole", "put the gripper down into the hole in the table"),
    "faucet-open-v3": ("open the faucet", "turn the tap on"),
    "faucet-close-v3": ("close the faucet", "turn the tap off"),
    "hammer-v3": ("hammer the nail into the wall", "drive the nail in with the hammer"),
    "handle-press-side-v3": ("press the handle down from the side", "push the handle downwards from the side"),
    "handle-press-v3": ("press the handle down", "push the handle downwards"),
    "handle-pull-side-v3": ("pull the handle up from the side", "lift the handle upwards from the side"),
    "handle-pull-v3": ("pull the handle up", "lift the handle upwards"),
    "lever-pull-v3": ("pull the lever up", "raise the lever"),
    "pick-place-wall-v3": (
        "pick up the puck and place it at the goal behind the wall",
        "lift the puck over the wall and put it on the goal",
    ),
    "pick-out-of-hole-v3": ("pick the peg out of the hole", "pull the peg up out of its hole"),
    "plate-slide-v3": ("slide the plate into the goal", "push the plate into the goal cage"),
    "plate-slide-side-v3": ("slide the plate sideways into the goal", "push the plate sideways into the goal cage"),
    "plate-slide-back-v3": ("slide the plate back out of the goal", "pull the plate back out of the goal cage"),
    "plate-slide-back-side-v3": (
        "slide the plate sideways back out of the goal",
        "pull the plate sideways out of the goal cage",
    ),
    "peg-unplug-side-v3": ("unplug the peg from the side", "pull the peg sideways out of its socket"),
    "soccer-v3": ("kick the ball into the goal", "knock the soccer ball into the net"),
    "stick-push-v3": ("grasp the stick and push the box with it", "pick up the stick and use it to shove the box"),
    "stick-pull-v3": ("grasp the stick and pull the box with it", "pick up the stick and use it to drag the box"),
    "push-wall-v3": ("push the puck around the wall to the goal", "slide the puck past the wall to the target"),
    "push-back-v3": ("push the puck backwards to the goal", "slide the puck back to the target"),
    "reach-wall-v3": ("reach the goal position over the wall", "move the gripper past the wall to the target"),
    "shelf-place-v3": ("pick up the puck and place it on the shelf", "put the puck up on the shelf"),
    "sweep-into-v3": ("sweep the puck into the hole", "brush the puck along the table into the hole"),
    "sweep-v3": ("sweep the puck off the table", "brush the puck over the edge of the table"),
}

# The splits share no template (and, as for MT10, no frame).
DESCRIPTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        "{Desc}.",
        "Please {desc}.",
        "Your job is to {desc}.",
        "Can you {alt}?",
        "{Alt}, please.",
        "Go ahead and {desc}.",
        "Try to {alt}.",
        "The task is to {desc}.",
        "Let's {alt}.",
        "Use the robot arm to {desc}.",
        "You should {alt} now.",
        "Without wasting time, {desc}.",
    ),
    "validation": ("Would you {desc}?", "I'd like you to {alt}.", "Next up: {desc}."),
    "test": ("Could you {desc}?", "I need you to {desc}.", "Time to {alt}.", "Here is what to do: {alt}."),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is a Meta-World v3 task name, else raise a ValueError naming close matches."""
    if task in ALL_V3_ENVIRONMENTS:
        return task
    close = difflib.get_close_matches(task, ALL_TASKS, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown Meta-World task {task!r}.{hint} Valid tasks: {', '.join(sorted(ALL_TASKS))}")


def task_instructions(task: str, split: str = "train") -> list[str]:
    """The instructions of a Meta-World v3 task in one split: ``"train"``, ``"validation"`` or
    ``"test"`` (alias ``"heldout"``)."""
    check_task(task)
    split = resolve_split(split, ("train", "validation", "test"))
    if task in _MT10_INSTRUCTIONS:
        return list(_MT10_INSTRUCTIONS[task][split])
    desc, alt = _DESCRIPTIONS[task]
    words = {"desc": desc, "Desc": desc[0].upper() + desc[1:], "alt": alt, "Alt": alt[0].upper() + alt[1:]}
    return [t.format(**words) for t in DESCRIPTION_TEMPLATES[split]]


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
