"""What the two priors built on a frozen LM share: finding the LM a config names (and checking it is
the one a saved prior was trained on), LoRA adapters, and a pass that stops after the first layers."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from priors.configuration import FrozenLMConfig, LoraSettings
from priors.lm import LoadedLM, Quantization, load_lm


def frozen_lm_for(
    config: FrozenLMConfig,
    lm: str | LoadedLM | None,
    *,
    device: str | torch.device,
    quantization: Quantization | None,
) -> tuple[FrozenLMConfig, LoadedLM]:
    """The LM of ``config`` (``lm``: another name or an already loaded LM) and the config that records it.

    A new prior's config (no fingerprint yet) records the LM's name, fingerprint and random-init seed; a
    saved prior's is checked against them. Either way the returned config names the precision the LM
    runs at now (``quantization`` overrides the config's).

    Raises:
        ValueError: a random-init LM asked for with a loaded LM, an LM that cannot be loaded for a saved
            prior, or one other than the saved prior's.
    """
    saved = config.lm_fingerprint is not None
    if isinstance(lm, LoadedLM):
        if not saved and config.lm_random_init_seed is not None:
            raise ValueError("a random-init LM (lm_random_init_seed) needs the LM's name, not a loaded LM")
        loaded = lm
    else:
        name = lm or config.lm_name
        try:
            loaded = load_lm(
                name,
                quantization=quantization or config.quantization,
                device=device,
                random_init_seed=config.lm_random_init_seed,
            )
        except (OSError, ValueError) as err:
            if not saved:
                raise
            raise ValueError(
                f"Could not load the language model {name!r} this prior was built on ({err}). "
                "Pass lm=<local folder or Hub id of that model> to load_prior."
            ) from err
    if saved and (
        loaded.fingerprint != config.lm_fingerprint or loaded.random_init_seed != config.lm_random_init_seed
    ):
        raise ValueError(
            f"LM fingerprint mismatch: this prior was built on {config.lm_name!r} (fingerprint "
            f"{config.lm_fingerprint}, random_init_seed={config.lm_random_init_seed}), but the language "
            f"model given is {loaded.name!r} (fingerprint {loaded.fingerprint}, random_init_seed="
            f"{loaded.random_init_seed}). Pass lm=<the model the prior was trained with>."
        )
    recorded = {} if saved else {"lm_name": loaded.name, "lm_fingerprint": loaded.fingerprint}
    config = dataclasses.replace(
        config, **recorded, lm_random_init_seed=loaded.random_init_seed, quantization=loaded.quantization
    )
    return config, loaded


def check_lm_layers(config: FrozenLMConfig, lm: LoadedLM) -> None:
    """Refuse an ``lm_layers`` outside the LM's ``1..num_hidden_layers``."""
    n_layers = lm.model.config.num_hidden_layers
    if config.lm_layers is not None and not 1 <= config.lm_layers <= n_layers:
        raise ValueError(f"lm_layers must be in 1..{n_layers} for {lm.name}, got {config.lm_layers}")


def add_lora(lm: nn.Module, lora: LoraSettings, n_layers: int | None = None) -> None:
    """Inject LoRA adapters (peft) into the frozen LM, on its first ``n_layers`` decoder layers only
    (``None``: all of them); the adapters are the LM's only trainable weights."""
    from peft import LoraConfig, inject_adapter_in_model

    settings = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        layers_to_transform=None if n_layers is None else list(range(n_layers)),
        layers_pattern=None if n_layers is None else "layers",
    )
    inject_adapter_in_model(settings, lm)
    for name, param in lm.named_parameters():
        param.requires_grad_("lora_" in name)


def lora_version(lm: nn.Module) -> int:
    """Changes whenever a LoRA weight is modified in place (optimiser step, load)."""
    return sum(p._version for n, p in lm.named_parameters() if "lora_" in n)


class _StopPass(Exception):
    """Raised by a forward hook to end an LM pass at the layer whose output is wanted."""


def first_layers_output(lm: nn.Module, n_layers: int | None, **inputs) -> torch.Tensor:
    """The hidden states after the LM's first ``n_layers`` decoder layers (``None`` or all of them: the
    final norm's output): a hook on that layer stops the pass, so reading layer 4 of 30 costs 4 layers."""
    if n_layers is None or n_layers == lm.config.num_hidden_layers:
        return lm(**inputs).last_hidden_state
    captured: list[torch.Tensor] = []

    def stop(module, args, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _StopPass

    handle = lm.layers[n_layers - 1].register_forward_hook(stop)
    try:
        lm(**inputs)
    except _StopPass:
        pass
    finally:
        handle.remove()
    return captured[0]
