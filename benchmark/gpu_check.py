"""The GPU path in one short run (issue 15): is the prior right and fast in NF4 and bf16 on CUDA?

Prints, and writes as JSON with ``--out``:

1. **Correctness.** For each precision (bf16, nf4) the shipped CLEVR-Robot prior's outputs against an
   fp32 model holding *the same weights* (the quantised LM's weights dequantised): mean and largest
   KL(fp32 || quantised) per state over real CLEVR-Robot states and training instructions.
2. **Prior speed.** States/s of ``Prior.predict`` (batch ``--batch``, prefix cache warm) for the
   shipped SmolLM2-135M prior (fp32, bf16, nf4) and for a 7B-class LM in NF4: a randomly initialised
   model of Llama-2-7B's shape (hidden 4096, 32 layers, MLP 11008; no weights can be downloaded there,
   and speed does not depend on the weights), once with LaGO's soft tokens and once reading the
   instruction only (the shipped priors' design), with the prior's heads on top.
   ``env steps per GPU-second`` is that rate: every env step needs one prior pass (the paper's
   press figures: about 12 on CLEVR-Robot, 27 on Meta-World).
3. **PPO SPS** of ``ppo_lago_clevr.py`` and ``ppo_lago_metaworld.py`` with their shipped priors against
   ``--kl-coef 0``, on the GPU (``--skip-ppo`` to leave it out).

On a GPU machine (a few minutes, about 14 GB of GPU memory for the 7B model)::

    MUJOCO_GL=egl python benchmark/gpu_check.py --out gpu_check.json

``--tiny`` runs every code path on whatever device there is with a 2-layer model in place of the 7B
one and small batches: a check of this script, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.utils.launch import REPO, run_training
from priors import DEFAULT_LM, build_prior, load_lm, load_prior
from priors.lm import resolve_lm_folder

LLAMA_2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)


def clevr_states(n: int, split: str = "train") -> tuple[np.ndarray, list[str]]:
    """``n`` states of random play and the instructions the env gave for them."""
    env = gym.make("CLEVR-Robot-v0", instruction_split=split)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    states, instructions = [], []
    for _ in range(n):
        states.append(obs)
        instructions.append(info["instruction"])
        obs, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, info = env.reset()
    return np.array(states, dtype=np.float32), instructions


def dequantised_weights_into(quantised, reference) -> int:
    """Copy the quantised LM module's weights, dequantised, into the fp32 ``reference``; return how many."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit

    target = dict(reference.named_modules())
    count = 0
    for name, module in quantised.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            weight = dequantize_4bit(module.weight.data, module.weight.quant_state)
        elif isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.bfloat16:
            weight = module.weight.data
        else:
            continue
        target[name].weight.data.copy_(weight.float())
        count += 1
    return count


def kl_against_fp32(prior_path: str, quantization: str, device: torch.device, n: int) -> dict[str, float]:
    """KL(fp32 || quantised) per state between the prior in ``quantization`` and fp32 on its weights."""
    quantised = load_prior(prior_path, device=device, quantization=quantization)
    reference = load_prior(prior_path, device=device, quantization="none")
    copied = dequantised_weights_into(quantised.lm, reference.lm)
    obs, instructions = clevr_states(n)
    p = torch.log_softmax(reference.predict(obs, instructions).float(), -1)
    q = torch.log_softmax(quantised.predict(obs, instructions).float(), -1)
    kl = (p.exp() * (p - q)).sum(-1)
    return {"mean_kl": float(kl.mean()), "max_kl": float(kl.max()), "layers_compared": copied, "states": n}


def states_per_second(
    prior, obs: np.ndarray, instructions: list[str], batch: int, device: torch.device
) -> float:
    """Best of three timed ``predict`` calls after a warm-up that fills the prefix cache."""
    prior.predict(obs[:batch], instructions[:batch], batch)
    best = float("inf")
    for _ in range(3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        prior.predict(obs, instructions, batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(obs) / best


def random_llama_folder(shape: dict, folder: Path, device: torch.device) -> Path:
    """A randomly initialised Llama of ``shape`` saved in fp16 with SmolLM2's tokenizer."""
    tokenizer_folder = Path(resolve_lm_folder(DEFAULT_LM))
    vocab = json.loads((tokenizer_folder / "config.json").read_text())["vocab_size"]
    config = LlamaConfig(**shape, num_key_value_heads=shape["num_attention_heads"], vocab_size=vocab)
    with torch.device(device):
        model = LlamaForCausalLM(config).half()
    model.save_pretrained(folder)
    del model
    for name in tokenizer_folder.iterdir():
        if name.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(name, folder / name.name)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny", action="store_true", help="a 2-layer stand-in for the 7B model, small batches"
    )
    parser.add_argument("--batch", type=int, default=1024, help="states per prior call")
    parser.add_argument("--skip-ppo", action="store_true")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, n = (64, 128) if args.tiny else (args.batch, 4 * args.batch)
    clevr_prior = str(REPO / "priors" / "pretrained" / "clevr-robot-smollm2")
    report: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "batch": batch,
    }

    report["correctness"] = {q: kl_against_fp32(clevr_prior, q, device, min(n, 512)) for q in ("bf16", "nf4")}
    for q, figures in report["correctness"].items():
        print(
            f"KL(fp32 || {q}) on the same weights: mean {figures['mean_kl']:.4f}, max {figures['max_kl']:.4f} nats"
        )

    obs, instructions = clevr_states(n)
    speed = {}
    for q in ("none", "bf16", "nf4"):
        prior = load_prior(clevr_prior, device=device, quantization=q)
        speed[f"smollm2-135m {q}"] = states_per_second(prior, obs, instructions, batch, device)
        del prior
    with tempfile.TemporaryDirectory() as tmp:
        shape = TINY if args.tiny else LLAMA_2_7B
        start = time.perf_counter()
        folder = random_llama_folder(shape, Path(tmp) / "llama", device)
        lm = load_lm(str(folder), quantization="nf4", device=device)
        report["7b_setup_seconds"] = time.perf_counter() - start
        env = gym.make("CLEVR-Robot-v0")
        prior = build_prior(
            observation_space=env.observation_space,
            action_space=env.action_space,
            lm=lm,
            observation_dims=10,
            device=device,
        )
        name = "tiny-llama nf4" if args.tiny else "llama-2-7b-shape nf4"
        speed[f"{name}, soft tokens"] = states_per_second(prior, obs, instructions, batch, device)
        del prior
        prior = build_prior(  # the shipped priors' design: the LM reads the instruction only
            observation_space=env.observation_space,
            action_space=env.action_space,
            kind="lm-instruction",
            lm=lm,
            observation_dims=10,
            device=device,
        )
        speed[f"{name}, reads the instruction"] = states_per_second(prior, obs, instructions, batch, device)
        if device.type == "cuda":
            report["7b_peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        del prior, lm
    report["prior_states_per_second"] = speed
    for name, rate in speed.items():
        print(f"prior {name}: {rate:,.0f} states/s = env steps per GPU-second (paper: ~12)")

    if not args.skip_ppo:
        steps = "2048" if args.tiny else "16384"
        ppo = {}
        for script, extra in (("ppo_lago_clevr.py", []), ("ppo_lago_metaworld.py", ["--num-steps", "512"])):
            path = REPO / "cleanrl_lago" / script
            common = ["--total-timesteps", steps, *extra]
            vanilla, _, _ = run_training(path, [*common, "--kl-coef", "0"])
            lago, mib, _ = run_training(path, [*common, "--kl-coef", "0.05"])
            ppo[script] = {
                "vanilla_sps": vanilla["charts/SPS"],
                "lago_sps": lago["charts/SPS"],
                "lago_peak_mib": mib,
            }
            ppo[script]["ratio"] = ppo[script]["lago_sps"] / ppo[script]["vanilla_sps"]
            print(
                f"{script}: vanilla {vanilla['charts/SPS']:.0f} SPS, LaGO {lago['charts/SPS']:.0f} SPS, ratio {ppo[script]['ratio']:.2f}"
            )
        report["ppo"] = ppo
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
