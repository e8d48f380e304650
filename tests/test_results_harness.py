"""The results grids (benchmark/grid.py, run by benchmark/results.py): their configurations, their
commands against the scripts' own arguments, the rliable reports on synthetic records, and the
modules' imports (no circle)."""

import ast
import importlib
import json
import sys

import numpy as np
import pytest
import tyro
from script_helpers import REPO

sys.path.insert(0, str(REPO / "benchmark"))
grid = importlib.import_module("grid")
results = importlib.import_module("results")
report_common = importlib.import_module("report_common")
report_early_grid = importlib.import_module("report_early_grid")
report_final_grid = importlib.import_module("report_final_grid")


def test_grid_covers_the_issue():
    runs = grid.early_grid()
    assert len({r.run_id for r in runs}) == len(runs)
    seeds_per_config = {}
    for r in runs:
        seeds_per_config.setdefault((r.algo, r.env, r.split, r.prior, r.kl_coef), set()).add(r.seed)
    assert min(len(s) for s in seeds_per_config.values()) >= 5
    metaworld = {r.env for r in runs if r.env != "clevr"}
    assert len(metaworld) >= 5
    for env in metaworld:
        assert {r.prior for r in runs if r.algo == "ppo" and r.env == env} == {"none", "mlp", "lm", "lm-bf16"}
    assert {r.prior for r in runs if r.env == "clevr"} == {"none", "mlp", "lm", "random-lm", "lm-bf16"}
    heldout = {(r.prior, r.seed) for r in runs if r.split == "heldout"}
    assert heldout == {(p, s) for p in ("mlp", "lm", "random-lm", "lm-bf16") for s in grid.SEEDS}
    assert len({r.kl_coef for r in runs if r.env == "clevr" and r.prior == "lm"}) >= 3
    assert {r.env for r in runs if r.algo == "sac" and r.prior == "lm"} == metaworld
    assert {r.env for r in runs if r.algo == "sac" and r.prior == "lm-bf16"} == metaworld
    # "lm" is the fp32 prior the main grid measured; "lm-bf16" the shipped default (no --prior)
    (fp32,) = {r.prior_path for r in runs if r.prior == "lm" and r.env == "clevr"}
    assert (fp32 / "config.json").exists() and "fp32" in fp32.name
    assert all("--prior" not in r.command() for r in runs if r.prior == "lm-bf16")


@pytest.mark.parametrize("algo,env", [("ppo", "clevr"), ("ppo", "push-v3"), ("sac", "reach-v3")])
def test_commands_parse_with_the_scripts_arguments(algo, env):
    run = grid.Run(algo, env, "random-lm", 0.05, 3, split="heldout" if env == "clevr" else "train")
    script, *argv = run.command()
    module = importlib.import_module(f"cleanrl_lago.{script.rsplit('/', 1)[1][:-3]}")
    args = tyro.cli(module.Args, args=argv)
    assert args.seed == 3 and args.kl_coef == 0.05 and args.save_model
    assert args.prior.endswith("-random-lm") and "benchmark/comparison_priors" in args.prior
    if env != "clevr":
        assert args.env_id == env
    else:
        assert args.instruction_split == "heldout" and "heldout" in run.run_id


def _record(run, rng):
    scores = rng.uniform(0, 1, 2)
    steps = [1024 * (i + 1) for i in range(10)]
    return {
        "run": dict(run.__dict__),
        "config": "stale name",
        "eval": (
            {"success_rate_train": scores[0], "success_rate_heldout": scores[1]}
            if run.env == "clevr"
            else {"success_rate": scores[0]}
        ),
        "curve": {
            "step": steps,
            "seconds": [s / 500 for s in steps],
            "success_rate": list(rng.uniform(0, 1, 10)),
        },
        "sps": 500.0,
        "wall_seconds": 30.0,
        "prior_time_fraction": None,
    }


def test_report_aggregates_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    runs = grid.early_grid(seeds=(1, 2, 3))
    for run in runs:
        (data / f"{run.run_id}.json").write_text(json.dumps(_record(run, rng)))
    out = tmp_path / "docs"
    report_early_grid.report(data, out, reps=500)
    for name in ("aggregates", "performance_profiles", "curves_steps", "curves_wall", "kl_sweep"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    clevr = summary["aggregates"][report_early_grid.CLEVR_HELDOUT]
    assert set(clevr) == set(report_early_grid.DOMAINS[report_early_grid.CLEVR_HELDOUT])
    assert set(summary["aggregates"]["Meta-World (SAC)"]) == {
        "SAC",
        "SAC + LM prior",
        "SAC + LM prior (bf16 LM)",
    }
    # The mean aggregate is the plain mean of the scores, inside its own interval; vanilla PPO's
    # held-out score is its evaluation with held-out phrasings.
    records = [json.loads(p.read_text()) for p in data.glob("ppo__clevr__none__kl0__seed?.json")]
    expected = np.mean([r["eval"]["success_rate_heldout"] for r in records])
    assert clevr["PPO"]["mean"] == pytest.approx(expected)
    low, high = clevr["PPO"]["mean_ci"]
    assert low <= expected <= high and low < high
    tables = (out / "tables.md").read_text()
    assert "| CLEVR-Robot, held-out phrasings (PPO) | PPO + random-LM prior | 3 x 1 |" in tables
    assert "| Meta-World (SAC) | SAC + LM prior | SAC | 3 x 5 |" in tables  # probability of improvement
    assert set(summary["kl_sweep"]) == {"clevr"} and len(summary["kl_sweep"]["clevr"]) == 4


def test_bootstrap_intervals_reproduce_exactly_and_leave_numpy_alone():
    """rliable samples from NumPy's global RNG whatever random_state says: two estimates drifted apart.
    Under seeded_bootstrap they are identical, and the caller's global RNG state is restored."""
    scores = {"a": np.random.default_rng(1).random((5, 3)), "b": np.random.default_rng(2).random((5, 3))}
    np.random.seed(123)  # noqa: NPY002 (the legacy global RNG is what is tested)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    first = report_common.interval_estimates(scores, reps=200)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    second = report_common.interval_estimates(scores, reps=200)
    for config in scores:
        assert np.array_equal(first[0][config], second[0][config])
        assert np.array_equal(first[1][config], second[1][config])


def test_relative_gain_where_a_mean_is_zero():
    """Vanilla PPO and the weakest priors score 0 on some Meta-World tasks: the ratio of two zero means is
    undefined (not inf), X > 0 over Y = 0 is inf, and resamples with both means 0 are left out."""
    zeros, half = np.zeros((3, 2, 1)), np.full((3, 2, 1), 0.5)
    some = np.array([[[0.0], [0.0]], [[0.0], [1.0]], [[0.0], [0.0]]])  # mean 1/6
    assert np.isnan(report_final_grid.relative_gain(zeros, zeros)).all()
    assert (
        report_final_grid.format_gain(*report_final_grid.relative_gain(zeros, zeros))
        == "undefined (both means 0)"
    )
    assert report_final_grid.relative_gain(half, zeros) == (np.inf, np.inf, np.inf)
    assert report_final_grid.relative_gain(zeros, some) == (0.0, 0.0, 0.0)
    point, low, high = report_final_grid.relative_gain(half, some)
    assert point == pytest.approx(3.0) and low == pytest.approx(1.0) and high == np.inf
    assert report_final_grid.format_gain(point, low, high) == "3.00 [1.00, inf]"


def _imports(module: str) -> set[str]:
    """The top-level packages and modules that ``benchmark/<module>.py`` imports anywhere in its code."""
    tree = ast.parse((REPO / "benchmark" / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_runner_grid_and_reports_import_no_circle():
    """results.py imports the grid and the reports; nothing it reaches imports it back (lazy imports
    included), and the grid imports no report."""
    local = {p.stem for p in (REPO / "benchmark").glob("*.py")}
    reports = {name for name in local if name.startswith("report")}
    reached, todo = set(), ["results"]
    while todo:
        new = (_imports(todo.pop()) & local) - reached
        reached |= new
        todo += new
    assert {"grid", "report_common", "report_early_grid", "report_final_grid"} <= reached
    assert "results" not in reached
    assert not _imports("grid") & (reports | {"results"})


# The final grid (issue 13): the re-shipped priors at budgets where vanilla PPO learns.


@pytest.mark.parametrize("seeds", [(4,), (4, 5), (1, 2, 3, 4), (10,)])
def test_final_grid_given_seeds_is_the_planned_grid_restricted_to_them(seeds):
    """``run --seeds 4`` runs exactly the planned runs of seed 4, none of a part planned for seeds 1-3."""
    planned = [r.run_id for r in grid.final_grid() if r.seed in seeds]
    assert [r.run_id for r in grid.final_grid(seeds=seeds)] == planned


def test_final_grid_covers_the_issue():
    runs = grid.final_grid()
    assert len({r.run_id for r in runs}) == len(runs) and all(r.grid == "final" for r in runs)

    def seeds(**where):
        return {r.seed for r in runs if all(getattr(r, k) == v for k, v in where.items())}

    ten = set(range(1, 11))
    assert seeds(env="clevr", prior="none") == ten
    for prior in ("lm", "gru"):
        for split in ("train", "heldout"):
            assert seeds(env="clevr", prior=prior, split=split, kl_coef=0.05, kl_schedule="constant") == ten
    for prior in ("random-lm", "lm-layer1"):  # does a stronger LM guide better?
        for split in ("train", "heldout"):
            assert len(seeds(env="clevr", prior=prior, split=split)) >= 5
    sweep = {r.kl_coef for r in runs if r.env == "clevr" and r.prior == "lm" and r.kl_schedule == "constant"}
    assert len(sweep) >= 4 and max(sweep) >= 5
    assert seeds(env="clevr", prior="lm", kl_schedule="auto")
    metaworld = {r.env for r in runs if r.env != "clevr" and r.env not in grid.TRANSFER_TASKS}
    assert len(metaworld) >= 5
    for algo in ("ppo", "sac"):
        for env in metaworld:
            graded = set(grid.GRADED_METAWORLD_PRIORS) if algo == "ppo" and env in grid.PAPER_TASKS else set()
            # parts 19 and 20: a larger LM and LaGO's soft-token design on Meta-World
            issue24 = {"gemma", "soft-token"} if algo == "ppo" else set()
            assert {r.prior for r in runs if r.algo == algo and r.env == env} == {
                "none",
                "lm",
                "gru",
                *graded,
                *issue24,
            }
            for prior in issue24:
                assert len(seeds(algo="ppo", env=env, prior=prior, kl_coef=0.05)) >= 3
                assert len(seeds(algo="prior", env=env, prior=prior, split="train")) >= 3
            if algo == "ppo":  # part 21: the strong MT10 priors at kl_coef 1 on every task
                for prior in ("lm", "soft-token"):
                    assert len(seeds(algo="ppo", env=env, prior=prior, kl_coef=1.0, budget="grid")) >= 3
    # transfer: a prior that never saw the two tasks, and the control, the shipped prior that did
    assert {r.prior for r in runs if r.env in grid.TRANSFER_TASKS} == {"none", "lm-transfer", "lm"}
    for env in grid.TRANSFER_TASKS:
        assert len(seeds(env=env, prior="lm")) >= 3 and len(seeds(env=env, prior="lm-transfer")) >= 5
    for prior in (
        "lm",
        "gru",
        "random-lm",
    ):  # and on CLEVR-Robot at a coefficient where PPO follows its prior
        assert len(seeds(env="clevr", prior=prior, split="heldout", kl_coef=grid.FINAL_CLOSE_KL)) >= 3
    for split in ("train", "heldout"):  # a larger LM (Gemma-3-270M) on CLEVR-Robot, both splits
        assert len(seeds(env="clevr", prior="gemma", split=split)) >= 5
        assert len(seeds(env="clevr", prior="soft-token", split=split)) >= 5  # LaGO's own design
    # issue 25: priors of graded quality at two coefficients, every CLEVR-Robot prior alone, the KL annealed
    for prior in grid.GRADED_PRIORS:
        for kl in (0.05, 1.0):
            assert (
                len(seeds(env="clevr", prior=prior, split="train", kl_coef=kl, kl_schedule="constant")) >= 3
            )
    clevr_priors = {p for p, (clevr, _) in grid.FINAL_PRIORS.items() if clevr}
    for prior in clevr_priors:
        guided = {r.split for r in runs if r.algo == "ppo" and r.env == "clevr" and r.prior == prior}
        for split in guided:
            assert len(seeds(algo="prior", prior=prior, split=split)) >= 5, (prior, split)
    for env in grid.PAPER_TASKS:  # part 18: the MT10 priors of graded quality on two tasks, 3 seeds
        for prior in grid.GRADED_METAWORLD_PRIORS:
            assert len(seeds(algo="prior", env=env, prior=prior, split="train")) >= 3
            for kl in (0.05, 1.0):
                assert len(seeds(algo="ppo", env=env, prior=prior, kl_coef=kl, budget="grid")) >= 3
    assert len(seeds(env="clevr", prior="lm", kl_schedule="linear")) >= 5
    assert len(seeds(env="clevr", prior="kickstart", kl_coef=0.0)) >= 5
    paper = [r for r in runs if r.budget == "paper"]  # part 17: the paper's budgets, 3 seeds
    assert {(r.prior, r.kl_coef, r.kl_schedule) for r in paper if r.env == "clevr"} == {
        ("none", 0.0, "constant"),
        ("lm", 0.05, "constant"),
        ("lm", grid.BEST_SWEEP_KL, "constant"),
        ("lm", 1.0, "linear"),
    }
    assert {r.env for r in paper} == {"clevr", "push-v3", "pick-place-v3"}
    assert all(len(seeds(env=r.env, prior=r.prior, kl_coef=r.kl_coef, budget="paper")) >= 3 for r in paper)
    for prior in ("lm", "gru"):  # Meta-World PPO with held-out phrasings too
        for env in metaworld:
            assert len(seeds(algo="ppo", env=env, prior=prior, split="heldout")) >= 3
    # budgets: at least 10x the early grid's, and 200k env steps on CLEVR-Robot
    for early, final in (
        (grid.CLEVR_BUDGET, grid.FINAL_CLEVR_BUDGET),
        (grid.PPO_METAWORLD_BUDGET, grid.FINAL_PPO_METAWORLD_BUDGET),
        (grid.SAC_BUDGET, grid.FINAL_SAC_BUDGET),
    ):
        steps = [int(b[b.index("--total-timesteps") + 1]) for b in (early, final)]
        assert steps[1] >= 10 * steps[0]
    assert int(grid.FINAL_CLEVR_BUDGET[1]) >= 200_000
    # every prior but the transfer prior (trained later) is in the repository, and the LM prior is the shipped one
    for run in runs:
        if run.prior == "kickstart":
            assert run.prior_path.is_file(), run.prior_path
        elif run.prior not in ("none", "lm-transfer", "lm-layer1"):
            assert (run.prior_path / "config.json").exists(), run.prior_path
    assert {r.prior_path for r in runs if r.prior == "lm" and r.env == "clevr"} == {
        REPO / "priors" / "pretrained" / "clevr-robot-smollm2"
    }


@pytest.mark.parametrize(
    "run",
    [
        grid.Run("ppo", "clevr", "gru", 0.05, 4, "heldout", "final"),
        grid.Run("ppo", "clevr", "lm", 0.05, 2, "train", "final", "auto"),
        grid.Run("ppo", "clevr", "lm", 1.0, 3, "train", "final", "linear"),
        grid.Run("ppo", "clevr", "kickstart", 0.0, 4, "train", "final"),
        grid.Run("ppo", "clevr", "lm", 5.0, 2, "train", "final", budget="paper"),
        grid.Run("ppo", "pick-place-v3", "lm", 0.05, 3, "train", "final", budget="paper"),
        grid.Run("ppo", "window-open-v3", "lm-transfer", 0.05, 1, grid="final"),
        grid.Run("sac", "push-v3", "none", 0.0, 3, grid="final"),
        grid.Run("ppo", "push-v3", "gru", 0.05, 2, "heldout", "final"),
    ],
    ids=lambda r: r.run_id,
)
def test_final_commands_parse_with_the_scripts_arguments(run):
    script, *argv = run.command()
    module = importlib.import_module(f"cleanrl_lago.{script.rsplit('/', 1)[1][:-3]}")
    args = tyro.cli(module.Args, args=argv)
    assert args.seed == run.seed and args.kl_coef == run.kl_coef and args.save_model
    if run.env == "clevr":
        assert args.total_timesteps == (204_800 if run.budget == "grid" else 1_500_000)
        assert args.instruction_split == run.split
        assert args.kl_schedule == run.kl_schedule
        if run.prior == "kickstart":  # vanilla PPO from the cloned agent
            assert args.init_model == str(run.prior_path) and args.kl_coef == 0
        else:
            assert args.prior == str(run.prior_path) and args.init_model is None
    else:
        assert args.env_id == run.env and args.prior == str(run.prior_path or args.prior)
        if run.algo == "ppo":
            assert args.instruction_split == run.split
        assert getattr(args, "prior_allow_unseen_tasks", False) == (run.prior == "lm-transfer")
    assert run.data_dir == grid.FINAL_DATA
    if run.budget == "paper":  # 1.5M / 1M env steps, checkpointed so that results.py can resume the run
        assert args.total_timesteps == (1_500_000 if run.env == "clevr" else 1_000_000)
        assert args.checkpoint_every > 0


def test_evaluate_clevr_matches_a_plain_episode_loop(tmp_path):
    """The harness's CLEVR-Robot score against an independent loop over one gymnasium env: the same
    episodes, their successes and lengths, greedy and sampled."""
    import gymnasium as gym
    import torch

    import cleanrl_lago.envs  # noqa: F401
    from cleanrl_lago.ppo_lago_clevr import Agent

    torch.manual_seed(0)
    agent = Agent(24, 40)
    with torch.no_grad():
        # a peaked policy: greedy and sampled differ, and some episodes succeed
        agent.actor[-1].weight.mul_(300)
    path = tmp_path / "agent.cleanrl_model"
    torch.save({"agent": agent.state_dict(), "obs_dim": 24, "n_actions": 40}, path)
    episodes, seed = 12, 10_003
    scores = results.evaluate_clevr(str(path), episodes, seed)

    for mode in ("greedy", "sampled"):
        env = gym.make("CLEVR-Robot-v0")
        generator = torch.Generator().manual_seed(seed)
        obs, _ = env.reset(seed=seed)
        outcomes, length = [], 0
        while len(outcomes) < episodes:
            logits = agent.actor(torch.as_tensor(obs[None]))
            if mode == "greedy":
                action = int(logits.argmax())
            else:
                action = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
            obs, _, terminated, truncated, info = env.step(action)
            length += 1
            if terminated or truncated:
                outcomes.append((info["success"], length))
                obs, _ = env.reset()
                length = 0
        expected_50 = np.mean([s for s, _ in outcomes])
        expected_10 = np.mean([s and n <= 10 for s, n in outcomes])
        assert scores[mode] == {"within_10": expected_10, "within_50": expected_50, "episodes": episodes}
    assert 0 < scores["sampled"]["within_50"] < 1


def _final_record(run, rng, shift=0.0):
    """A synthetic record of the final grid; CLEVR-Robot scores sit ``shift`` above a uniform draw."""
    steps = [1024 * (i + 1) for i in range(10)]
    if run.env == "clevr":
        draw = lambda: float(min(1.0, rng.uniform(0, 0.5) + shift))  # noqa: E731
        ev = {m: {"within_10": draw(), "within_50": draw(), "episodes": 200} for m in ("greedy", "sampled")}
    else:
        ev = {"success_rate": float(rng.uniform(0, 1))}
    alone = run.algo == "prior"  # no training: an empty curve, no SPS (results.execute_prior_alone)
    return {
        "run": dict(run.__dict__),
        "config": "stale name",
        "eval": ev,
        "curve": {
            "step": [] if alone else steps,
            "seconds": [] if alone else [s / 500 for s in steps],
            "success_rate": [] if alone else list(rng.uniform(0, 1, 10)),
        },
        "sps": None if alone else 500.0,
        "wall_seconds": 30.0,
        "prior_time_fraction": None if run.prior == "none" else float(rng.uniform(0, 0.1)),
    }


def test_final_grid_report_aggregates_improvement_and_gain(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for run in grid.final_grid(seeds=(1, 2, 3, 4)):
        # the LM prior's CLEVR-Robot scores all lie above every other configuration's
        shift = 0.5 if run.env == "clevr" and run.prior == "lm" else 0.0
        (data / f"{run.run_id}.json").write_text(json.dumps(_final_record(run, rng, shift)))
    summary = report_final_grid.report(data, tmp_path / "docs", reps=300)
    for name in (
        "aggregates",
        "curves_steps",
        "curves_wall",
        "kl_sweep",
        "prior_quality",
        "prior_quality_metaworld",
    ):
        assert (tmp_path / "docs" / f"{name}.png").stat().st_size > 10_000
    key = f"{report_final_grid.CLEVR_HELDOUT} | sampled_50"
    records = [json.loads(p.read_text()) for p in data.glob("ppo__clevr__heldout__lm__kl0.05__*.json")]
    lm = np.array([r["eval"]["sampled"]["within_50"] for r in records])
    vanilla = np.array(
        [
            json.loads(p.read_text())["eval"]["sampled"]["within_50"]
            for p in data.glob("ppo__clevr__none__kl0__seed?.json")
        ]
    )
    assert summary["aggregates"][key]["PPO + LM prior"]["mean"] == pytest.approx(lm.mean())
    assert summary["aggregates"][key]["PPO + LM prior"]["runs"] == 4
    p, low, high = summary["improvement"][key]["PPO + LM prior > PPO"]
    assert p == low == high == 1.0  # every LM run beats every vanilla run
    gain = summary["gain"][key]["PPO + LM prior / PPO"]
    assert gain[0] == pytest.approx(lm.mean() / vanilla.mean()) and gain[1] <= gain[0] <= gain[2]
    # the sweep: vanilla (0), the main 0.05 and the others on seeds 1-3, and auto
    assert list(summary["kl_sweep"]) == ["0", "0.01", "0.05", "0.2", "1", "5", "auto"]
    assert all(n == 3 for *_, n in summary["kl_sweep"].values())
    # Meta-World PPO with held-out phrasings: vanilla PPO's runs (it never reads the instruction) are the baseline
    heldout = summary["aggregates"][f"{report_final_grid.MW_PPO_HELDOUT} | success"]
    assert set(heldout) == {"PPO", "PPO + LM prior", "PPO + GRU prior (no LM)", *report_final_grid.MW_ALONE}
    assert heldout["PPO"] == summary["aggregates"][f"{report_final_grid.MW_PPO} | success"]["PPO"]
    gru = [
        json.loads(p.read_text())["eval"]["success_rate"]
        for p in data.glob("ppo__*-v3__heldout__gru__kl0.05__seed*.json")
        if "window" not in p.name
    ]
    assert heldout["PPO + GRU prior (no LM)"]["mean"] == pytest.approx(np.mean(gru))
    assert heldout["PPO + GRU prior (no LM)"]["runs"] == 3
    close = summary["aggregates"][f"{report_final_grid.CLEVR_HELDOUT_CLOSE} | sampled_50"]
    assert set(close) == set(report_final_grid.CLOSE_CONFIGS)
    assert close["PPO"] == summary["aggregates"][key]["PPO"]  # vanilla PPO: the same runs for every split
    lm1 = [
        json.loads(p.read_text())["eval"]["sampled"]["within_50"]
        for p in data.glob("ppo__clevr__heldout__lm__kl1__*")
    ]
    assert close["PPO + LM prior, kl_coef 1"]["mean"] == pytest.approx(np.mean(lm1)) and len(lm1) == 3
    assert summary["improvement"][f"{report_final_grid.CLEVR_HELDOUT_CLOSE} | sampled_50"][
        "PPO + LM prior, kl_coef 1 > PPO + GRU prior (no LM), kl_coef 1"
    ] == [1.0, 1.0, 1.0]
    transfer = summary["aggregates"][f"{report_final_grid.TRANSFER} | success"]
    assert set(transfer) == {"PPO", "PPO + LM prior, task unseen", "PPO + LM prior"}
    seen = [json.loads(p.read_text())["eval"]["success_rate"] for p in data.glob("ppo__window-*__lm__*")]
    assert transfer["PPO + LM prior"]["mean"] == pytest.approx(np.mean(seen)) and len(seen) == 6
    assert (
        transfer["PPO + LM prior"]
        != summary["aggregates"][f"{report_final_grid.MW_PPO} | success"]["PPO + LM prior"]
    )
    # the speed table: the prior's share of the wall time, a median over runs (vanilla has no prior)
    shares = [json.loads(p.read_text())["prior_time_fraction"] for p in data.glob("sac__*__gru__*")]
    assert summary["speed"]["Meta-World (SAC) | SAC + GRU prior (no LM)"][2] == pytest.approx(
        np.median(shares)
    )
    assert summary["speed"]["Meta-World (SAC) | SAC"][2] is None
    assert not [k for k in summary["speed"] if k.endswith(" alone")]
    # part 21: the strong MT10 priors at kl_coef 1, beside the same priors at 0.05 and alone
    close_mw = summary["aggregates"][f"{report_final_grid.MW_CLOSE} | success"]
    assert set(close_mw) == set(report_final_grid.MW_CLOSE_CONFIGS)
    assert close_mw["PPO"] == summary["aggregates"][f"{report_final_grid.MW_PPO} | success"]["PPO"]
    soft1 = [
        json.loads(p.read_text())["eval"]["success_rate"]
        for p in data.glob("ppo__*-v3__soft-token__kl1__seed*.json")
    ]
    assert close_mw["PPO + LaGO soft-token prior, kl_coef 1"]["mean"] == pytest.approx(np.mean(soft1))
    assert len(soft1) == 15 and close_mw["PPO + LaGO soft-token prior, kl_coef 1"]["runs"] == 3
    # part 17: the paper's budgets in their own domains, with the prior alone; never in the sweep
    assert set(summary["aggregates"][f"{report_final_grid.CLEVR_PAPER} | sampled_50"]) == set(
        report_final_grid.PAPER_CONFIGS
    )
    assert set(summary["aggregates"][f"{report_final_grid.MW_PAPER} | success"]) == set(
        report_final_grid.MW_PAPER_CONFIGS
    )
    sweep_5 = [
        json.loads(p.read_text())["eval"]["sampled"]["within_50"]
        for p in data.glob("ppo__clevr__lm__kl5__seed?.json")
    ]
    assert summary["kl_sweep"]["5"][0] == pytest.approx(np.mean(sweep_5)) and len(sweep_5) == 3
    # the MT10 priors alone: the baseline of PPO (its phrasings) and of SAC (train phrasings), per task
    mw_alone = [
        json.loads(p.read_text())["eval"]["success_rate"]
        for p in data.glob("prior__*-v3__gru__kl0__seed*.json")
    ]
    for domain in (report_final_grid.MW_PPO, report_final_grid.MW_SAC):
        cell = summary["aggregates"][f"{domain} | success"]["GRU prior (no LM) alone"]
        assert (cell["mean"], cell["runs"]) == (pytest.approx(np.mean(mw_alone)), 4)
    # issue 25: priors of graded quality, each prior alone, the KL annealed; every config on its own seeds
    graded = summary["aggregates"][f"{report_final_grid.CLEVR_GRADED} | sampled_50"]
    assert set(graded) == set(report_final_grid.GRADED_CONFIGS)

    def mean_of(pattern, score=lambda ev: ev["sampled"]["within_50"]):
        """The mean score of the records the pattern matches, and how many there are."""
        values = [score(json.loads(p.read_text())["eval"]) for p in data.glob(pattern)]
        return np.mean(values), len(values)

    for config, pattern, runs in (
        ("PPO + LM prior, 5% of the data, kl_coef 1", "ppo__clevr__lm-n150__kl1__seed?.json", 4),
        ("LM prior, goals mislabelled alone", "prior__clevr__lm-mislabelled__kl0__seed?.json", 4),
        ("PPO + LM prior, kl_coef 1", "ppo__clevr__lm__kl1__seed?.json", 3),
        ("PPO + LM prior, kl_coef 1 annealed to 0", "ppo__clevr__lm__kl1-linear__seed?.json", 4),
    ):
        assert (graded[config]["mean"], graded[config]["runs"]) == pytest.approx(mean_of(pattern)), config
        assert graded[config]["runs"] == runs
    # part 18: the same on two Meta-World tasks; the shipped prior's runs come from parts 2 and 14
    mw_graded = summary["aggregates"][f"{report_final_grid.MW_GRADED} | success"]
    assert set(mw_graded) == set(report_final_grid.MW_GRADED_CONFIGS)
    for config, pattern, runs in (
        ("PPO", "ppo__p*-v3__none__kl0__seed?.json", 4),
        ("LM prior alone", "prior__p*-v3__lm__kl0__seed?.json", 4),
        ("PPO + LM prior", "ppo__p*-v3__lm__kl0.05__seed?.json", 4),
        ("PPO + LM prior, kl_coef 1", "ppo__p*-v3__lm__kl1__seed?.json", 3),
        ("LM prior, 20% of the data alone", "prior__p*-v3__lm-n600__kl0__seed?.json", 3),
        ("PPO + LM prior, 1% of the data, kl_coef 1", "ppo__p*-v3__lm-n30__kl1__seed?.json", 3),
    ):
        assert (mw_graded[config]["mean"], 2 * mw_graded[config]["runs"]) == pytest.approx(
            mean_of(pattern, lambda ev: ev["success_rate"])
        )
        assert mw_graded[config]["runs"] == runs, config
    # parts 19 and 20: the Gemma and the soft-token MT10 priors alone and guiding PPO on the five tasks,
    # seeds 1-3 beside the others' 1-4
    mw = summary["aggregates"][f"{report_final_grid.MW_PPO} | success"]
    for prior, configs in (
        ("gemma", report_final_grid.MW_GEMMA),
        ("soft-token", report_final_grid.MW_SOFT_TOKEN),
    ):
        patterns = (f"ppo__*-v3__{prior}__kl0.05__seed?.json", f"prior__*-v3__{prior}__kl0__seed?.json")
        for config, pattern in zip(configs, patterns, strict=True):
            assert (mw[config]["mean"], 5 * mw[config]["runs"]) == pytest.approx(
                mean_of(pattern, lambda ev: ev["success_rate"])
            )
            assert mw[config]["runs"] == 3, config
    improvement = summary["improvement"][f"{report_final_grid.CLEVR_GRADED} | sampled_50"]
    assert improvement["PPO + LM prior, kl_coef 1 annealed to 0 > PPO"] == [1.0, 1.0, 1.0]
    assert improvement["PPO + LM prior, 1% of the data > LM prior, 1% of the data alone"][0] < 1.0
    alone = summary["aggregates"][key]["LM prior alone"]
    assert (alone["mean"], alone["runs"]) == pytest.approx(
        mean_of("prior__clevr__heldout__lm__kl0__seed?.json")
    )
    assert (close["LM prior alone"]["mean"], close["LM prior alone"]["runs"]) == (
        alone["mean"],
        alone["runs"],
    )
    assert "LM prior alone" not in summary["aggregates"][f"{report_final_grid.CLEVR_HELDOUT} | train_auc"]


def test_evaluate_clevr_scores_a_prior_alone_as_a_plain_loop_does(tiny_priors):
    """A prior acting alone (part 14) on the agents' episodes: against an independent loop that reads each
    episode's instruction from the env's reset info, in the held-out phrasings."""
    import gymnasium as gym
    import torch

    import cleanrl_lago.envs  # noqa: F401
    from cleanrl_lago.envs.clevr_robot import all_instructions
    from priors import load_prior

    prior = load_prior(tiny_priors["clevr"], device="cpu")
    episodes, seed = 6, 10_002
    scores = results.evaluate_clevr(str(tiny_priors["clevr"]), episodes, seed, split="heldout")
    for mode in ("greedy", "sampled"):
        env = gym.make("CLEVR-Robot-v0", instruction_split="heldout")
        generator = torch.Generator().manual_seed(seed)
        obs, info = env.reset(seed=seed)
        outcomes, length, instruction = [], 0, info["instruction"]
        while len(outcomes) < episodes:
            with torch.no_grad():
                logits = prior(obs[None], [instruction]).float()
            if mode == "greedy":
                action = int(logits.argmax())
            else:
                action = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
            obs, _, terminated, truncated, info = env.step(action)
            length += 1
            if terminated or truncated:
                outcomes.append((info["success"], length))
                obs, info = env.reset()
                length, instruction = 0, info["instruction"]
        expected_50 = np.mean([s for s, _ in outcomes])
        expected_10 = np.mean([s and n <= 10 for s, n in outcomes])
        assert scores[mode] == {"within_10": expected_10, "within_50": expected_50, "episodes": episodes}
    assert instruction in all_instructions("test")


def test_evaluate_metaworld_prior_alone_matches_a_plain_episode_loop(tiny_priors):
    """A Meta-World prior alone (part 14) against an independent loop over one env: the mean action, clipped,
    200-step episodes, success at any step."""
    import gymnasium as gym
    import torch

    from cleanrl_lago.envs.metaworld_tasks import make_metaworld_env, task_instructions
    from priors import load_prior

    episodes, seed = 2, 10_004
    scores = results.evaluate_metaworld_prior(
        str(tiny_priors["reach"]), "reach-v3", episodes, seed, "heldout"
    )
    prior = load_prior(tiny_priors["reach"], device="cpu")
    instruction = task_instructions("reach-v3", "test")[0]
    env = gym.wrappers.ClipAction(make_metaworld_env("reach-v3", seed=seed, max_episode_steps=200))
    obs, _ = env.reset(seed=seed)
    outcomes, succeeded = [], False
    while len(outcomes) < episodes:
        with torch.no_grad():
            action = prior(obs[None], [instruction]).chunk(2, dim=-1)[0][0].float().numpy()
        obs, _, terminated, truncated, info = env.step(action)
        succeeded |= info["success"] > 0
        if terminated or truncated:
            outcomes.append(float(succeeded))
            obs, _ = env.reset()
            succeeded = False
    assert scores == {"success_rate": float(np.mean(outcomes))}


def test_a_paper_budget_run_resumes_from_the_checkpoint_an_attempt_left(tmp_path):
    """``resume_from``: a fresh folder starts afresh; a checkpoint left by an interrupted attempt is resumed,
    and the time that attempt spent up to its checkpoint (the checkpoint's ``saved_at``, not the file's
    time, which a fresh clone resets) is kept for the record's wall time."""
    import os

    import torch

    assert results.resume_from(tmp_path) == ([], 0.0)
    start = float((tmp_path / "attempt_start").read_text())
    checkpoint = tmp_path / "runs" / "CLEVR-Robot-v0__ppo_lago_clevr__1__17" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"saved_at": start + 100.0}, checkpoint)
    os.utime(checkpoint, (start + 9_000.0, start + 9_000.0))  # a clone's file time: not the work kept
    assert results.resume_from(tmp_path) == (
        ["--resume", "runs/CLEVR-Robot-v0__ppo_lago_clevr__1__17"],
        100.0,
    )
    start = float((tmp_path / "attempt_start").read_text())
    torch.save({"saved_at": start + 50.0}, checkpoint)  # a second interruption: both attempts' kept work
    assert results.resume_from(tmp_path)[1] == 150.0
    start = float((tmp_path / "attempt_start").read_text())
    torch.save({}, checkpoint)  # written before checkpoints recorded saved_at: the file's time counts
    os.utime(checkpoint, (start + 25.0, start + 25.0))
    assert results.resume_from(tmp_path)[1] == 175.0
