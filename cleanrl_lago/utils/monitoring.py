"""What a run reports of itself as it goes: finished episodes with their success, and a console progress bar.
None of it is the algorithm."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np


class EpisodeStats:
    """Finished episodes of a vector env (``SAME_STEP`` autoreset) with their success: an episode
    succeeds if ``info["success"]`` was set at any of its steps (Meta-World does not end on success)."""

    def __init__(self, num_envs: int):
        self.ever_success = np.zeros(num_envs, dtype=bool)

    def state_dict(self) -> dict[str, Any]:
        return {"ever_success": self.ever_success.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ever_success = state["ever_success"].copy()

    def finished(self, infos: dict[str, Any]) -> list[tuple[float, int, float]]:
        """(return, length, success) of each episode that ended at this step."""
        if "success" in infos:
            self.ever_success |= (infos["success"] > 0) & infos.get("_success", True)  # not just reset
        episodes = []
        if "final_info" in infos:
            final = infos["final_info"]
            for i in np.nonzero(final.get("_episode", []))[0]:
                success = self.ever_success[i] or ("success" in final and final["success"][i] > 0)
                episodes.append((float(final["episode"]["r"][i]), int(final["episode"]["l"][i]), float(success)))
                self.ever_success[i] = False
        return episodes


class Progress:
    """A console progress bar (tqdm) with SPS, the recent success rate and the time left; off when
    standard error is not a terminal, so logs and tests see only CleanRL's prints."""

    def __init__(self, total: int, initial: int = 0):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not sys.stderr.isatty())
        self.start_time, self.start_step, self.success_rate = time.time(), initial, None

    def update(self, global_step: int, success_rate: float | None = None) -> None:
        sps = (global_step - self.start_step) / max(time.time() - self.start_time, 1e-9)
        self.success_rate = self.success_rate if success_rate is None else success_rate  # the latest known
        postfix = {"SPS": int(sps)}
        if self.success_rate is not None:
            postfix["success"] = f"{self.success_rate:.2f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(global_step - self.bar.n)

    def close(self) -> None:
        self.bar.close()
