"""The instruction splits, one set of names for both benchmarks: ``"train"`` phrasings for training,
``"validation"`` for model selection, ``"test"`` for reporting only; CLEVR-Robot adds ``"novel"``
(words that no train phrasing uses). ``"heldout"`` is the earlier name of ``"test"``."""

from __future__ import annotations

SPLIT_ALIASES = {"heldout": "test"}
"""Other names of splits: ``"heldout"`` (the earlier name of the test phrasings) is ``"test"``."""
_ROLES = {
    "train": "phrasings for training",
    "validation": "for model selection",
    "test": "(alias 'heldout') for reporting only",
    "novel": "(words no train phrasing uses) for reporting only",
}


def with_aliases(splits: tuple[str, ...]) -> tuple[str, ...]:
    """Every accepted name of ``splits``: the splits, then the aliases of those among them."""
    return (*splits, *(alias for alias, split in SPLIT_ALIASES.items() if split in splits))


def resolve_split(split: str, splits: tuple[str, ...]) -> str:
    """``split`` with its alias resolved; a ValueError naming the accepted names if it is none of ``splits``."""
    if split not in with_aliases(splits):
        roles = ", ".join(f"'{s}' {_ROLES[s]}" for s in splits)
        raise ValueError(f"unknown instruction split {split!r}: choose one of {list(with_aliases(splits))} ({roles})")
    return SPLIT_ALIASES.get(split, split)
