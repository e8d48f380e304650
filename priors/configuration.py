"""The configurations of the prior kinds: what a prior's ``config.json`` holds.

One dataclass per kind, each holding only fields that mean something for it: :class:`PriorConfig`
(what every prior has: spaces, sizes, seed, provenance), :class:`FrozenLMConfig` (what the two
priors built on a frozen LM add), and the kinds' own :class:`LMPriorConfig` (``"lm"``, LaGO's soft
tokens), :class:`InstructionLMPriorConfig` (``"lm-instruction"``), :class:`GRUPriorConfig` (``"gru"``)
and :class:`MLPPriorConfig` (``"mlp"``). :meth:`PriorConfig.from_dict` reads any of them, and the
files of versions 1 and 2 (one flat layout for every kind) too.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

from priors.lm import Quantization

FORMAT_VERSION = 3
"""Version of the ``config.json`` layout written here (3: per-kind fields); versions 1 and 2 are read too."""
PriorKind = Literal["lm", "lm-instruction", "gru", "mlp"]
"""``"lm"``: a frozen LM reads soft tokens made from the observation after the instruction (LaGO);
``"lm-instruction"``: a GRU reads the frozen LM's states of the instruction, the observation joins in
the head; ``"gru"``: no LM, a GRU trained from scratch on the LM tokenizer's tokens; ``"mlp"``: no LM, a
bag of words."""
PRIOR_KINDS: tuple[str, ...] = get_args(PriorKind)
LEGACY_KINDS = {"random-lm": "lm"}
"""Kinds of versions 1-2 that are now another kind's option: ``"random-lm"`` is ``"lm"`` on a random-init LM
(``lm_random_init_seed``)."""
DEFAULT_PROMPT_FORMAT = "Instruction: {instruction}\nObservation:"
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class LoraSettings:
    """LoRA adapters on the frozen LM (peft); off unless given to :func:`priors.build_prior`."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


@dataclass
class Provenance:
    """Where a prior comes from. Nothing here is needed to rebuild or run it."""

    command: str | None = None
    """The command(s) that produced the prior, as they were run."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Training and evaluation metrics."""
    dataset: str | None = None
    """The demonstrations it was trained on (a Minari dataset id)."""
    instruction_split: dict[str, Any] | None = None
    """Free-form record of the instructions used for training and held out."""
    notes: list[str] = field(default_factory=list)
    """Free-form remarks, e.g. how a recorded command is spelled in a later version."""


@dataclass(kw_only=True)
class PriorConfig:
    """What every prior's ``config.json`` holds: its kind, the spaces it was built for, the sizes and seed
    of its trainable parts, and its :class:`Provenance`. Each kind's config adds its own fields."""

    kind: str = field(default="", init=False)
    observation_space: dict[str, Any]
    """The environment's observation space (:func:`priors.spaces.space_to_dict`)."""
    action_space: dict[str, Any]
    """``Discrete(n)`` (categorical prior) or ``Box`` (diagonal Gaussian prior)."""
    env_id: str | None = None
    """The environment the prior is for (``load_prior(env_id=...)`` checks it)."""
    tasks: list[str] | None = None
    """The tasks it was trained on, if the environment has tasks (``load_prior(tasks=...)`` checks them)."""
    observation_dims: int | None = None
    """Read only the first this many observation entries (``None``: all)."""
    hidden_size: int = 256
    seed: int = 0
    """Seed of the trainable parts' initialisation."""
    log_std_min: float = -5.0
    """``Box`` actions: the floor of the Gaussian's log standard deviation."""
    log_std_max: float = 2.0
    provenance: Provenance = field(default_factory=Provenance)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorConfig:
        """The config of ``data["kind"]``, from :meth:`to_dict`'s output or a version 1 or 2 file.

        Versions 1-2 wrote every kind's fields for every kind: those another kind's config holds are left
        out silently, and version 1's flat provenance (``metrics``, ``command`` and ``instruction_split``
        beside the architecture) moves under ``provenance``. Unknown keys of a version 3 file, at the top
        level or in ``provenance`` (written by a newer version), are left out with a warning naming them.

        Raises:
            ValueError: an unknown kind.
        """
        data = dict(data)
        legacy = data.get("format_version") in (1, 2)
        if data.get("format_version") == 1:
            data = _from_version_1(data)
        kind = LEGACY_KINDS.get(data.get("kind"), data.get("kind")) if legacy else data.get("kind")
        config_class = CONFIG_CLASSES.get(kind)
        if config_class is None:
            raise ValueError(f"unknown prior kind {data.get('kind')!r}; expected one of {PRIOR_KINDS}")
        names = {f.name for f in fields(config_class) if f.init}
        provenance = dict(data.get("provenance") or {})
        unknown = [f"provenance.{k}" for k in provenance if k not in {f.name for f in fields(Provenance)}]
        if not legacy:
            unknown += [k for k in data if k not in names and k != "kind"]
        if unknown:
            warnings.warn(
                f"prior config: ignoring unknown field(s) {', '.join(sorted(unknown))} (written by a newer version?)",
                stacklevel=2,
            )
        known = {name: data[name] for name in names if name in data}
        known["provenance"] = Provenance(
            **{f.name: provenance[f.name] for f in fields(Provenance) if f.name in provenance}
        )
        known["format_version"] = FORMAT_VERSION
        if known.get("lora") is not None:
            known["lora"] = LoraSettings(**known["lora"])
        return config_class(**known)

    @property
    def full_obs_dim(self) -> int:
        """Size of the flattened environment observation."""
        return int(np.prod(self.observation_space["shape"]))

    @property
    def obs_dim(self) -> int:
        """How many leading entries of the flattened observation the prior reads."""
        return self.full_obs_dim if self.observation_dims is None else self.observation_dims

    @property
    def is_discrete(self) -> bool:
        return self.action_space["type"] == "Discrete"

    @property
    def n_action_params(self) -> int:
        """Logits for ``Discrete(n)``; mean and log-std for a ``Box``."""
        if self.is_discrete:
            return int(self.action_space["n"])
        return 2 * int(np.prod(self.action_space["shape"]))

    def describe(self) -> str:
        """One line naming the kind and what it reads the instruction with (for logs)."""
        return self.kind

    def card_rows(self) -> list[tuple[str, str]]:
        """The ``| field | value |`` rows of the kind's model card table."""
        return [("kind", self.kind)]


@dataclass(kw_only=True)
class FrozenLMConfig(PriorConfig):
    """The fields of the priors built on a frozen language model."""

    lm_name: str | None = None
    """The LM it was built on (a name :func:`priors.lm.load_lm` understands)."""
    lm_fingerprint: str | None = None
    """Hash of the LM's weights and vocabulary (:func:`priors.lm.lm_fingerprint`), checked on load."""
    lm_random_init_seed: int | None = None
    """Set when the LM is a fresh random initialisation of the named architecture (the no-pretraining control)."""
    quantization: Quantization | None = None
    """The precision the LM runs at: ``"none"`` (fp32), ``"bf16"``, ``"nf4"``, ``"int8"``."""
    prompt_format: str = DEFAULT_PROMPT_FORMAT
    """The text the LM reads, ``{instruction}`` replaced by the instruction."""
    lora: LoraSettings | None = None
    """LoRA adapters on the LM, on the layers it runs (``None``: fully frozen)."""
    lm_layers: int | None = None
    """Run the LM's first this many decoder layers and read their output (``None``: all of them, then the final
    norm): a truncated LM, cheaper per state; the layers above never run."""

    def describe(self) -> str:
        random = (
            f", random init seed {self.lm_random_init_seed}" if self.lm_random_init_seed is not None else ""
        )
        return f"{self.kind}, LM {self.lm_name}{random}, {self.quantization}"

    def card_rows(self) -> list[tuple[str, str]]:
        return super().card_rows() + [
            ("language model", f"`{self.lm_name}` (fingerprint `{self.lm_fingerprint}`)"),
            ("quantization", str(self.quantization)),
            ("LoRA", "off" if self.lora is None else f"r={self.lora.r}"),
        ]


@dataclass(kw_only=True)
class LMPriorConfig(FrozenLMConfig):
    """Kind ``"lm"``, LaGO's design: the observation becomes soft tokens the frozen LM reads after the prompt."""

    kind: str = field(default="lm", init=False)
    n_obs_tokens: int = 4
    """How many soft tokens the observation becomes."""

    def card_rows(self) -> list[tuple[str, str]]:
        layers = self.lm_layers or "all"
        return super().card_rows() + [
            ("soft observation tokens", str(self.n_obs_tokens)),
            ("LM layers run", str(layers)),
        ]


@dataclass(kw_only=True)
class InstructionLMPriorConfig(FrozenLMConfig):
    """Kind ``"lm-instruction"``: the frozen LM reads the instruction only; the observation joins in the head."""

    kind: str = field(default="lm-instruction", init=False)

    def card_rows(self) -> list[tuple[str, str]]:
        layers = self.lm_layers or "all"
        return super().card_rows() + [("LM layers read", f"{layers} (the LM reads the instruction only)")]


@dataclass(kw_only=True)
class GRUPriorConfig(PriorConfig):
    """Kind ``"gru"``, the no-LM baseline: a GRU trained from scratch reads the tokens of an LM's tokenizer."""

    kind: str = field(default="gru", init=False)
    lm_name: str | None = None
    """The LM whose tokenizer reads the instruction (its weights are not used)."""
    lm_fingerprint: str | None = None
    """Hash of that tokenizer's vocabulary (:func:`priors.lm.tokenizer_fingerprint`), checked on load."""

    def describe(self) -> str:
        return f"gru, {self.lm_name}'s tokenizer"

    def card_rows(self) -> list[tuple[str, str]]:
        return super().card_rows() + [
            ("tokenizer", f"`{self.lm_name}`'s (fingerprint `{self.lm_fingerprint}`)")
        ]


@dataclass(kw_only=True)
class MLPPriorConfig(PriorConfig):
    """Kind ``"mlp"``, the weakest reference: an MLP over the observation and a hashed bag of words."""

    kind: str = field(default="mlp", init=False)
    n_buckets: int = 4096
    """Hash buckets of the instruction's words."""


CONFIG_CLASSES: dict[str, type[PriorConfig]] = {
    config.kind: config
    for config in (LMPriorConfig, InstructionLMPriorConfig, GRUPriorConfig, MLPPriorConfig)
}
"""Each kind's config class (:data:`priors.PRIOR_TYPES` pairs them with the model classes)."""


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1's flat layout in version 2's: provenance fields move under ``provenance``, the
    dataset out of ``instruction_split``."""
    provenance = {key: data.pop(key) for key in ("metrics", "command", "instruction_split") if key in data}
    split = provenance.get("instruction_split")
    if isinstance(split, dict) and "dataset" in split:
        split = dict(split)
        provenance["dataset"] = split.pop("dataset")
        provenance["instruction_split"] = split
    if provenance.get("metrics") is None:
        provenance.pop("metrics", None)
    return {**data, "provenance": provenance, "format_version": 2}
