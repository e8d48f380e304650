# The README's two commands: `make run` (set-up + main job) and `make test` (set-up + tests).
# Headless MuJoCo rendering: OSMesa on CPU machines; use MUJOCO_GL=egl on GPU machines.
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= $(MUJOCO_GL)
PY := .venv/bin/python

.PHONY: setup run test lint docs format mutation

setup:
	bash scripts/setup.sh

run: setup
	$(PY) cleanrl_lago/ppo_lago_metaworld.py --kl-coef 0.05

test: setup lint docs
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The docs site (mkdocs' built-in theme, no network); --strict fails on a broken link.
docs: setup
	.venv/bin/mkdocs build --strict --quiet

format: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

# Mutation testing of the method's core (slow, outside `make test`; docs/mutation.md). Configured in
# pyproject.toml [tool.mutmut]; one module at a time: make mutation MUTANTS='priors.io.*'
MUTANTS ?=
mutation: setup
	OMP_NUM_THREADS=1 .venv/bin/mutmut run --max-children $(or $(JOBS),1) $(MUTANTS)
	.venv/bin/mutmut results
