"""Publishing a trained agent to the Hugging Face Hub, as CleanRL's ``cleanrl_utils/huggingface.py``:
the model, the script, TensorBoard logs, a replay video and a model card naming the prior."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from priors import upload_folder_to_hub


def _agent_card(
    repo_id: str,
    algorithm: str,
    env_id: str,
    prior: str | None,
    kl_coef: float,
    metrics: dict[str, Any],
    command: str,
) -> str:
    tags = ["reinforcement-learning", "lago", "cleanrl-lago", "custom-implementation", env_id]
    lines = ["---", "library_name: cleanrl-lago", "tags:", *[f"- {json.dumps(t)}" for t in tags], "---", ""]
    lines += [f"# {algorithm} on {env_id}", ""]
    guidance = f"guided by the LaGO prior `{prior}` with `kl_coef = {kl_coef}`" if prior else "without a prior (vanilla)"
    lines += [
        f"A policy trained by cleanrl-lago's `{algorithm}`, {guidance}. The file `{algorithm}.cleanrl_model` is a "
        "`torch.save` dict with the agent's state dict and everything needed to rebuild it (spaces, "
        "observation normalisation statistics, arguments); load it with `torch.load(path, weights_only=True)`.",
        "",
    ]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
        lines.append("")
    lines += ["## Command", "", "```bash", command, "```", ""]
    return "\n".join(lines)


def push_agent_to_hub(
    args: Any,
    repo_id: str,
    model_path: str | Path,
    script_path: str | Path,
    run_dir: str | Path | Any,
    video_folder: str | Path | None = None,
    metrics: dict[str, Any] | None = None,
    prior: str | None = None,
    *,
    command: str | None = None,
    token: str | None = None,
    private: bool = False,
) -> str:
    """Upload a trained agent as CleanRL does: the model, the script, TensorBoard logs, a replay video
    (the newest MP4 of ``video_folder``, if any) and a model card naming the prior (``None``: vanilla)
    and the command (default: ``python`` and this process's arguments)."""
    command = command or "python " + " ".join(sys.argv)
    staging = Path(tempfile.mkdtemp(prefix="lago-upload-"))
    try:
        shutil.copy2(model_path, staging / Path(model_path).name)
        shutil.copy2(script_path, staging / Path(script_path).name)
        if hasattr(run_dir, "flush"):  # the run's SummaryWriter: what it logged last (evaluation) goes too
            run_dir.flush()
            run_dir = run_dir.log_dir
        for events in Path(run_dir).glob("events.out.tfevents.*"):
            shutil.copy2(events, staging / events.name)
        videos = sorted(Path(video_folder).glob("*.mp4"), key=lambda p: p.stat().st_mtime) if video_folder else []
        if videos:
            shutil.copy2(videos[-1], staging / "replay.mp4")
        card = _agent_card(repo_id, args.exp_name, args.env_id, prior, args.kl_coef, metrics or {}, command)
        (staging / "README.md").write_text(card)
        return upload_folder_to_hub(
            staging, repo_id, token=token, private=private, commit_message=f"Upload {args.exp_name} agent"
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
