"""CLEVR-Robot: five balls on a table, a pusher, and language goals of the form (ball A, relation, ball B).

Our own gymnasium implementation on the official ``mujoco`` bindings of the environment of
Jiang et al. (2019), with the Discrete(40) "perfect" push actions used by KALM and LaGO.

Choices (documented in ``docs/envs/clevr_robot.md``):

* **Relation check** (KALM's stricter one): ball A is ``rel`` of ball B when A's centre lies in
  the 90-degree sector around the relation's direction from B (angle at most 45 degrees, i.e.
  cosine at least 0.7071) and the centres are less than 0.39 apart. The original's looser check
  (cosine > 0.6, distance < 0.7) is satisfied by chance far more often.
  Directions as seen from the top camera: left = -x, right = +x, in front of = +y, behind = -y.
* **Reward** 1.0 on the step the goal holds, else 0.0 (sparse, as the original). The episode
  terminates on success; ``gym.make`` adds a 50-step time limit (KALM's evaluation setting).
* **Observation** float32, shape (24,): the x, y of the five balls (red, blue, green, purple,
  cyan) followed by one-hot ball A (5), one-hot relation (4) and one-hot ball B (5).
* **Instruction** in ``info["instruction"]`` at reset and every step, drawn from the train,
  validation or test phrasings (``instruction_split``; ``"heldout"`` is ``"test"``), which share
  no template.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from cleanrl_lago.envs.splits import resolve_split, with_aliases

COLORS: tuple[str, ...] = ("red", "blue", "green", "purple", "cyan")
RELATIONS: tuple[str, ...] = ("left", "right", "front", "behind")
RELATION_DIRECTIONS = np.array([(-1.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, -1.0)])
PUSH_DIRECTIONS = np.array(
    [(1, 0), (0, 1), (-1, 0), (0, -1), (0.8, 0.8), (-0.8, 0.8), (0.8, -0.8), (-0.8, -0.8)], dtype=np.float64
)
NUM_BALLS = len(COLORS)
NUM_ACTIONS = NUM_BALLS * len(PUSH_DIRECTIONS)
NUM_GOALS = NUM_BALLS * len(RELATIONS) * (NUM_BALLS - 1)
OBS_DIM = 2 * NUM_BALLS + NUM_BALLS + len(RELATIONS) + NUM_BALLS

BALL_RADIUS = 0.13
PUSHER_RADIUS = 0.05
# The spec gives no pusher mass; 0.1 reproduces the original's measured unobstructed push
# (ball moves about 0.24 cardinal / 0.27 diagonal): see docs/envs/clevr_robot.md.
PUSHER_MASS = 0.1
TABLE_Z = -0.325
WALL_X = 0.6
WALL_Y_BEHIND, WALL_Y_FRONT = -0.3, 0.7
SPAWN_X, SPAWN_Y = (-0.5, 0.5), (-0.3, 0.5)
MIN_SURFACE_GAP = 0.1
PUSH_OFFSET = 0.15
PUSH_SUBSTEPS = 40
RELATION_MIN_COS = float(np.cos(np.pi / 4))
RELATION_MAX_DIST = 0.39

# Everything the integrator reads (warm start included), so a simulated push equals the real one.
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION

_RGBA = {
    "red": "0.85 0.15 0.15 1",
    "blue": "0.15 0.3 0.9 1",
    "green": "0.1 0.7 0.2 1",
    "purple": "0.55 0.2 0.75 1",
    "cyan": "0.1 0.8 0.85 1",
}
# Four wordings of each relation, read from the top camera: {rel}, {rel_short} and {rel_side}, and
# {rel_more}, which only the "novel" phrasings use.
_RELATION_WORDS = {
    "left": ("to the left of", "left of", "on the left side of", "farther left than"),
    "right": ("to the right of", "right of", "on the right side of", "farther right than"),
    "front": ("in front of", "ahead of", "on the front side of", "closer to the camera than"),
    "behind": ("behind", "in back of", "on the back side of", "farther from the camera than"),
}

# Phrasings: {a}/{b} are colours, {rel}/{rel_short}/{rel_side}/{rel_more} a relation's wordings. The
# splits share no template: priors train on "train", select models and stop early on "validation", and
# report "test" ("heldout" is an alias of "test") and "novel" (new words) only.
INSTRUCTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        "Move the {a} ball {rel} the {b} ball.",
        "Push the {a} sphere {rel} the {b} sphere.",
        "Can you push the {a} ball {rel} the {b} one?",
        "Put the {a} ball {rel} the {b} ball.",
        "The {a} ball should end up {rel} the {b} ball.",
        "Get the {a} sphere {rel} the {b} sphere, please.",
        "Move the {a} ball so that it ends up {rel_short} the {b} ball.",
        "Slide the {a} ball {rel_short} the {b} ball.",
        "Shift the {a} sphere until it is {rel_side} the {b} sphere.",
        "Could you move the {a} ball {rel_side} the {b} ball?",
        "Make the {a} ball sit {rel} the {b} ball.",
        "Bring the {a} one {rel_short} the {b} one.",
        "Nudge the {a} ball over so it is {rel} the {b} ball.",
        "Arrange the balls so that the {a} one is {rel_short} the {b} one.",
        "Please place the {a} sphere {rel_side} the {b} sphere.",
        "Your task: get the {a} ball {rel} the {b} ball.",
        "Is it possible to push the {a} ball {rel_short} the {b} ball?",
        "Taking the {b} ball as the anchor, put the {a} ball {rel} it.",
        "Take the {a} ball and roll it {rel_side} the {b} ball.",
        "Reposition the {a} ball so it lies {rel_short} the {b} ball.",
    ),
    "validation": (
        "I would like the {a} ball to be {rel} the {b} ball.",
        "Go and push the {a} sphere {rel_short} the {b} sphere.",
        "Would you put the {a} ball {rel_side} the {b} one?",
        "Keeping an eye on the {b} ball, move the {a} ball {rel} it.",
        "Have the {a} ball finish {rel_short} the {b} ball.",
        "Drive the {a} sphere {rel} the {b} sphere.",
    ),
    "test": (
        "Roll the {a} ball until it sits {rel} the {b} ball.",
        "I want the {a} sphere {rel} the {b} one.",
        "Place the {a} ball so that it is {rel} the {b} ball.",
        "Please make sure the {a} ball ends up {rel_side} the {b} ball.",
        "How about moving the {a} sphere {rel_short} the {b} sphere?",
        "The {a} ball belongs {rel} the {b} ball; push it there.",
        "Relative to the {b} ball, the {a} ball has to go {rel_short} it.",
        "Steer the {a} one {rel_side} the {b} one.",
    ),
    # Evaluation only (no dataset records it): nouns, verbs and a relation wording that no train phrasing
    # uses, to measure how far a prior carries over to words its demonstrations never had.
    "novel": (
        "Relocate the {a} marble so it is {rel} the {b} marble.",
        "Shove the {a} orb {rel_short} the {b} orb.",
        "Transfer the {a} globe over {rel_side} the {b} globe.",
        "The {a} marble must be {rel_more} the {b} marble.",
        "Tap the {a} orb until it rests {rel_more} the {b} orb.",
        "Aim for a layout where the {a} ball is {rel_more} the {b} ball.",
        "Kindly roll the {a} marble {rel} the {b} marble.",
        "Rearrange things: {a} orb {rel_short} {b} orb.",
    ),
}
INSTRUCTION_SPLITS: tuple[str, ...] = with_aliases(tuple(INSTRUCTION_TEMPLATES))
"""Every accepted split name (:mod:`cleanrl_lago.envs.splits`): the four splits, then ``"heldout"``."""


def instruction_text(goal: tuple[int, int, int], template: str) -> str:
    """Render goal ``(ball_a, relation, ball_b)`` with one template."""
    a, rel, b = goal
    words = _RELATION_WORDS[RELATIONS[rel]]
    return template.format(a=COLORS[a], b=COLORS[b], rel=words[0], rel_short=words[1], rel_side=words[2], rel_more=words[3])


def split_templates(split: str) -> tuple[str, ...]:
    """The templates of ``split`` (``"train"``, ``"validation"``, ``"test"`` or its alias ``"heldout"``, ``"novel"``)."""
    return INSTRUCTION_TEMPLATES[resolve_split(split, tuple(INSTRUCTION_TEMPLATES))]


def sample_instruction(goal: tuple[int, int, int], split: str, rng: np.random.Generator) -> str:
    """One phrasing of ``goal`` from ``split``, the template drawn uniformly with ``rng``."""
    templates = split_templates(split)
    return instruction_text(goal, templates[rng.integers(len(templates))])


def all_goals() -> list[tuple[int, int, int]]:
    """The 80 goals (ball A, relation, ball B) with A != B, in a fixed order."""
    return [(a, r, b) for a in range(NUM_BALLS) for r in range(len(RELATIONS)) for b in range(NUM_BALLS) if a != b]


def all_instructions(split: str) -> list[str]:
    """Every instruction string of a split (80 goals x its templates)."""
    return [instruction_text(g, t) for g in all_goals() for t in split_templates(split)]


def relation_holds(positions: np.ndarray, goal: tuple[int, int, int]) -> bool:
    """Whether ball A stands in the goal's relation to ball B, given (5, 2) ball centres."""
    a, rel, b = goal
    offset = positions[a] - positions[b]
    dist = float(np.linalg.norm(offset))
    if dist <= 1e-9 or dist >= RELATION_MAX_DIST:
        return False
    return float(offset @ RELATION_DIRECTIONS[rel]) / dist >= RELATION_MIN_COS


def goal_encoding(goal: tuple[int, int, int]) -> np.ndarray:
    """One-hot ball A, one-hot relation, one-hot ball B: 14 float32 values."""
    a, rel, b = goal
    enc = np.zeros(2 * NUM_BALLS + len(RELATIONS), dtype=np.float32)
    enc[a] = 1.0
    enc[NUM_BALLS + rel] = 1.0
    enc[NUM_BALLS + len(RELATIONS) + b] = 1.0
    return enc


def _scene_xml(width: int, height: int) -> str:
    balls = "\n".join(
        f"""    <body name="ball_{c}" pos="0 {0.3 * i} {TABLE_Z + BALL_RADIUS}">
      <joint name="ball_{c}" type="free" damping="0.75"/>
      <geom type="sphere" size="{BALL_RADIUS}" density="1" rgba="{_RGBA[c]}" contype="1" conaffinity="3"/>
    </body>"""
        for i, c in enumerate(COLORS)
    )
    # Walls: contype 2 / conaffinity 0 collide with the balls (conaffinity 3) but not with the pusher.
    thick, z, half_h = 0.05, TABLE_Z + 0.2, 0.2
    half_x = WALL_X + 2 * thick
    mid_y = 0.5 * (WALL_Y_BEHIND + WALL_Y_FRONT)
    half_y = 0.5 * (WALL_Y_FRONT - WALL_Y_BEHIND) + 2 * thick
    wall = 'type="box" rgba="0 0 0 0" contype="2" conaffinity="0"'
    return f"""<mujoco model="clevr_robot">
  <option timestep="0.01" integrator="Euler" gravity="0 0 -9.81"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <headlight ambient="0.3 0.3 0.3" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
  </visual>
  <worldbody>
    <light pos="0 0.2 2.5" dir="0 0 -1" directional="true" diffuse="0.5 0.5 0.5"/>
    <camera name="top" pos="0 {mid_y} 1.9" xyaxes="1 0 0 0 1 0" fovy="40"/>
    <geom name="table" type="plane" pos="0 {mid_y} {TABLE_Z}" size="1.2 1.2 0.1" rgba="0.45 0.45 0.45 1"
          contype="1" conaffinity="1"/>
    <geom name="wall_right" {wall} pos="{WALL_X + thick} {mid_y} {z}" size="{thick} {half_y} {half_h}"/>
    <geom name="wall_left" {wall} pos="{-WALL_X - thick} {mid_y} {z}" size="{thick} {half_y} {half_h}"/>
    <geom name="wall_behind" {wall} pos="0 {WALL_Y_BEHIND - thick} {z}" size="{half_x} {thick} {half_h}"/>
    <geom name="wall_front" {wall} pos="0 {WALL_Y_FRONT + thick} {z}" size="{half_x} {thick} {half_h}"/>
{balls}
    <body name="pusher" pos="0 0 {TABLE_Z + BALL_RADIUS}">
      <joint name="pusher_x" type="slide" axis="1 0 0" damping="0.5"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" damping="0.5"/>
      <geom type="sphere" size="{PUSHER_RADIUS}" mass="{PUSHER_MASS}" rgba="0.2 0.2 0.2 1" contype="1" conaffinity="1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="pusher_x" ctrlrange="-2 2" ctrllimited="true"/>
    <motor joint="pusher_y" ctrlrange="-2 2" ctrllimited="true"/>
  </actuator>
</mujoco>"""


class ClevrRobotEnv(gym.Env):
    """CLEVR-Robot with Discrete(40) push actions: ``ball = a // 8``, ``direction = a % 8``.

    Args:
        instruction_split: ``"train"``, ``"validation"`` or ``"test"`` (alias ``"heldout"``) phrasings
            for ``info["instruction"]``.
        render_mode: ``None`` or ``"rgb_array"`` (top-down camera).
        width, height: size of rendered frames.

    ``reset(options=...)`` accepts ``{"goal": (a, rel, b)}`` (indices or names) and
    ``{"ball_positions": (5, 2) array}`` to build a scene by hand.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        instruction_split: str = "train",
        render_mode: str | None = None,
        width: int = 256,
        height: int = 256,
    ):
        resolve_split(instruction_split, tuple(INSTRUCTION_TEMPLATES))
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unsupported render_mode {render_mode!r}: use None or 'rgb_array'")
        self.instruction_split = instruction_split
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.model = mujoco.MjModel.from_xml_string(_scene_xml(width, height))
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        self._state = np.empty(mujoco.mj_stateSize(self.model, _STATE_SPEC))
        self._ball_qpos = np.array([self.model.joint(f"ball_{c}").qposadr[0] for c in COLORS])
        self._pusher_qpos = np.array([self.model.joint(n).qposadr[0] for n in ("pusher_x", "pusher_y")])
        self._pusher_dof = np.array([self.model.joint(n).dofadr[0] for n in ("pusher_x", "pusher_y")])
        self._renderer: mujoco.Renderer | None = None
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        # Ball centres stay inside the walls; the goal encoding is one-hot.
        low = np.concatenate([np.tile([-WALL_X, WALL_Y_BEHIND], NUM_BALLS), np.zeros(14)]).astype(np.float32)
        high = np.concatenate([np.tile([WALL_X, WALL_Y_FRONT], NUM_BALLS), np.ones(14)]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.goal: tuple[int, int, int] = (0, 0, 1)
        self.instruction = ""

    # ----- state -----------------------------------------------------------------------------
    def ball_positions(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """(5, 2) x, y of the ball centres."""
        qpos = (self.data if data is None else data).qpos
        return np.stack([qpos[i : i + 2] for i in self._ball_qpos]).copy()

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.ball_positions().ravel().astype(np.float32), goal_encoding(self.goal)])

    def _info(self, success: bool) -> dict[str, Any]:
        return {"instruction": self.instruction, "goal": self.goal, "success": success}

    def _sample_positions(self) -> np.ndarray:
        # Sample only centres clear of the walls (the original let balls spawn inside a wall).
        lo = np.array([max(SPAWN_X[0], -WALL_X + BALL_RADIUS), max(SPAWN_Y[0], WALL_Y_BEHIND + BALL_RADIUS)])
        hi = np.array([min(SPAWN_X[1], WALL_X - BALL_RADIUS), min(SPAWN_Y[1], WALL_Y_FRONT - BALL_RADIUS)])
        min_dist = 2 * BALL_RADIUS + MIN_SURFACE_GAP
        while True:
            positions: list[np.ndarray] = []
            for _ in range(1000):
                p = self.np_random.uniform(lo, hi)
                if all(np.linalg.norm(p - q) >= min_dist for q in positions):
                    positions.append(p)
                    if len(positions) == NUM_BALLS:
                        return np.array(positions)

    def _set_positions(self, positions: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        for i, adr in enumerate(self._ball_qpos):
            self.data.qpos[adr : adr + 3] = (*positions[i], TABLE_Z + BALL_RADIUS)
            self.data.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0)
        # Park the pusher outside the arena until the first push.
        self.data.qpos[self._pusher_qpos] = (0.0, WALL_Y_FRONT + 0.3)
        mujoco.mj_forward(self.model, self.data)

    def goal_holds(self, goal: tuple[int, int, int] | None = None, data: mujoco.MjData | None = None) -> bool:
        """Whether ``goal`` (default: the current goal) holds in ``data`` (default: the scene)."""
        return relation_holds(self.ball_positions(data), self.goal if goal is None else goal)

    # ----- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"goal", "ball_positions"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}: use 'goal' and/or 'ball_positions'")
        if "ball_positions" in options:
            positions = np.asarray(options["ball_positions"], dtype=np.float64)
            if positions.shape != (NUM_BALLS, 2) or not np.all(np.isfinite(positions)):
                raise ValueError(f"ball_positions must be a finite (5, 2) array, got shape {positions.shape}")
        else:
            positions = self._sample_positions()
        self._set_positions(positions)
        if "goal" in options:
            self.goal = _parse_goal(options["goal"])
        else:
            false_goals = [g for g in all_goals() if not relation_holds(positions, g)]
            self.goal = false_goals[self.np_random.integers(len(false_goals))]
        self.instruction = sample_instruction(self.goal, self.instruction_split, self.np_random)
        return self._obs(), self._info(self.goal_holds())

    def push(self, action: int, data: mujoco.MjData | None = None) -> None:
        """Execute push ``action`` on ``data`` (default: the scene): place the pusher behind the
        ball with zero velocity, then drive it along the direction for 40 physics steps."""
        data = self.data if data is None else data
        ball, direction = divmod(int(action), len(PUSH_DIRECTIONS))
        d = PUSH_DIRECTIONS[direction]
        adr = self._ball_qpos[ball]
        data.qpos[self._pusher_qpos] = data.qpos[adr : adr + 2] - PUSH_OFFSET * d
        data.qvel[self._pusher_dof] = 0.0
        data.ctrl[:] = d
        mujoco.mj_step(self.model, data, nstep=PUSH_SUBSTEPS)

    def simulate(self, action: int) -> np.ndarray:
        """Ball positions (5, 2) after ``action``, computed on a scratch copy; the scene is untouched."""
        mujoco.mj_getState(self.model, self.data, self._state, _STATE_SPEC)
        mujoco.mj_setState(self.model, self._scratch, self._state, _STATE_SPEC)
        self.push(action, self._scratch)
        return self.ball_positions(self._scratch)

    def step(self, action):
        self.push(_check_action(action))
        success = self.goal_holds()
        return self._obs(), float(success), success, False, self._info(success)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, self.height, self.width)
            except Exception as err:  # the GL backend's own error says little
                raise RuntimeError(
                    f"offscreen rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: set "
                    "MUJOCO_GL=egl on a GPU machine, or MUJOCO_GL=osmesa with libOSMesa installed "
                    "(scripts/setup.sh installs it), before Python starts"
                ) from err
        self._renderer.update_scene(self.data, camera="top")
        return self._renderer.render().copy()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _check_action(action) -> int:
    arr = np.asarray(action)
    if arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"CLEVR-Robot takes one integer action in 0..{NUM_ACTIONS - 1}, got {action!r} "
            f"(dtype {arr.dtype}, shape {arr.shape}); pass e.g. int(a) or a 0-d integer array"
        )
    a = int(arr)
    if not 0 <= a < NUM_ACTIONS:
        raise ValueError(f"action {a} is outside 0..{NUM_ACTIONS - 1} (ball = a // 8 in 0..4, direction = a % 8 in 0..7)")
    return a


def _parse_goal(goal: Sequence) -> tuple[int, int, int]:
    if len(goal) != 3:
        raise ValueError(f"goal must be (ball_a, relation, ball_b), got {goal!r}")
    names = (COLORS, RELATIONS, COLORS)
    parsed = []
    for value, valid in zip(goal, names, strict=True):
        if isinstance(value, str):
            if value not in valid:
                raise ValueError(f"unknown goal part {value!r}: choose one of {valid}")
            parsed.append(valid.index(value))
        else:
            if not 0 <= int(value) < len(valid):
                raise ValueError(f"goal index {value} out of range 0..{len(valid) - 1}")
            parsed.append(int(value))
    if parsed[0] == parsed[2]:
        raise ValueError(f"goal relates a ball to itself: {goal!r}")
    return parsed[0], parsed[1], parsed[2]
