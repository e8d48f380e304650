"""Uploading a folder to the Hugging Face Hub (for priors: :func:`priors.io.push_prior_to_hub`)."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def upload_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload",
    allow_patterns: list[str] | None = None,
) -> str:
    """Create ``repo_id`` (a model repo) if needed and upload ``folder`` into it; return the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=commit_message,
        allow_patterns=allow_patterns,
    )
    logger.info("Uploaded %s to %s", folder, url)
    return str(url)
