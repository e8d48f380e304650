"""The results grids' runs: what each run is (``Run``: its configuration, command and record folder)
and which runs each grid plans (``GRIDS``). ``results.py`` runs them; the reports read their records.

Priors of the first grid: ``lm`` is the LM prior it was measured with, trained and run with its LM
in fp32 (the scripts' default then); ``lm-bf16`` the same trained weights with the LM in bf16
(``python -m cleanrl_lago.convert_prior``). ``lm``, ``mlp`` and ``random-lm`` lie in
``benchmark/comparison_priors/``; ``mlp`` and ``random-lm`` were trained by the same command as
``lm`` with only ``--kind`` changed (each ``config.json`` holds the exact command). The final grid's
priors are listed in ``FINAL_PRIORS``. The folder is not called ``benchmark/priors``: that name would
shadow the ``priors`` package for scripts run from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmark" / "results" / "data"
PRIORS = REPO / "benchmark" / "comparison_priors"

SEEDS = (1, 2, 3, 4, 5)
# The first five MT10 tasks in Meta-World's own order (a fixed rule, not picked by outcome).
METAWORLD_TASKS = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3")
KL_SWEEP = (0.2, 1.0)  # with the main 0.05, three values of kl_coef
MAIN_KL = {"ppo": 0.05, "sac": 0.1}  # SAC: the coefficient's start, tuned toward --kl-target

# Budgets, chosen so the whole grid fits a 2-core CPU in about 1.5 hours (see docs/results-early.md).
# CLEVR-Robot is scored with sampled actions: at these budgets the policy is still close to uniform,
# and its argmax repeats one push (vanilla PPO: about 32% sampled, 4% greedy).
CLEVR_BUDGET = [
    "--total-timesteps",
    "20480",
    "--num-envs",
    "8",
    "--num-steps",
    "128",
    "--eval-episodes",
    "50",
    "--no-eval-greedy",
]
PPO_METAWORLD_BUDGET = [
    "--total-timesteps",
    "10240",
    "--num-steps",
    "512",
    "--num-minibatches",
    "8",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "10",
]
SAC_BUDGET = [
    "--total-timesteps",
    "3000",
    "--learning-starts",
    "1000",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "10",
]


# The final grid (issue 13): the re-shipped priors (the LM reads the instruction), at budgets 10x the
# early grid's, and more seeds. Every configuration of a domain shares one command but for the prior.
FINAL_DATA = REPO / "benchmark" / "results" / "final" / "data"
FINAL_SEEDS = tuple(range(1, 11))
FINAL_MAIN_KL = {"ppo": 0.05, "sac": 0.1}  # the scripts' defaults, fixed before the grid ran
FINAL_KL_SWEEP = (0.01, 0.2, 1.0, 5.0)  # and "auto" (toward the script's --kl-target), on seeds 1-3
FINAL_CLOSE_KL = 1.0  # part 9: a coefficient at which PPO follows its prior closely (from the sweep)
# The two MT10 tasks the transfer prior never saw (the last two in Meta-World's order).
TRANSFER_TASKS = ("window-open-v3", "window-close-v3")
FINAL_PRIORS = {  # key: (CLEVR-Robot prior, MT10 prior), relative to the repository
    "lm": ("priors/pretrained/clevr-robot-smollm2", "priors/pretrained/metaworld-mt10-smollm2"),
    "gru": (
        "benchmark/comparison_priors/clevr-robot-gru-v1",
        "benchmark/comparison_priors/metaworld-mt10-gru",
    ),
    "random-lm": ("benchmark/comparison_priors/clevr-robot-random-lm-layer4", None),
    "lm-layer1": ("benchmark/comparison_priors/clevr-robot-lm-layer1", None),
    "lm-transfer": (None, "benchmark/comparison_priors/metaworld-mt8-lm"),
    "gemma": (
        "benchmark/comparison_priors/clevr-robot-gemma-layer4",
        "benchmark/comparison_priors/metaworld-mt10-gemma-layer4",
    ),
    "soft-token": (
        "benchmark/comparison_priors/clevr-robot-soft-token-layer4",
        "benchmark/comparison_priors/metaworld-mt10-soft-token-layer4",
    ),
    # Priors of graded quality (issue 25): the shipped command on 1%, 5% and 20% of the demonstrations
    # (the same mix; CLEVR-Robot: 30 / 150 / 600 of 3000 episodes, as the keys say; MT10: 1 / 5 / 20 of 100
    # episodes per task, 10 / 50 / 200 in all), and on the full CLEVR-Robot data with every goal mislabelled
    # (the opposite relation: a misleading prior) or shuffled (a random other goal: an uninformative one).
    "lm-n30": (
        "benchmark/comparison_priors/clevr-robot-smollm2-n30",
        "benchmark/comparison_priors/metaworld-mt10-smollm2-n10",
    ),
    "lm-n150": (
        "benchmark/comparison_priors/clevr-robot-smollm2-n150",
        "benchmark/comparison_priors/metaworld-mt10-smollm2-n50",
    ),
    "lm-n600": (
        "benchmark/comparison_priors/clevr-robot-smollm2-n600",
        "benchmark/comparison_priors/metaworld-mt10-smollm2-n200",
    ),
    "lm-mislabelled": ("benchmark/comparison_priors/clevr-robot-smollm2-mislabelled", None),
    "lm-shuffled": ("benchmark/comparison_priors/clevr-robot-smollm2-shuffled", None),
}
# Part 17: the paper's budgets (about 1.5M env steps on CLEVR-Robot, 1M on Meta-World; its Meta-World runs
# took 20M), keyed by "is it CLEVR-Robot": 1464 iterations of 1,024 steps; 1953 of 512.
PAPER_STEPS = {True: 1_500_000, False: 1_000_000}
PAPER_STEPS_LABEL = {True: "1.5M steps", False: "1M steps"}
PAPER_TASKS = ("push-v3", "pick-place-v3")
BEST_SWEEP_KL = 5.0  # the sweep's highest mean (87.2%, seeds 1-3; 1 gave 85.2%), read before part 17 ran

# Part 16's agent: the shipped CLEVR-Robot prior cloned into PPO's actor (python -m cleanrl_lago.kickstart; the
# command is in the file's args), from which vanilla PPO starts (--init-model): the kickstarting baseline.
KICKSTART_AGENT = "benchmark/results/final/kickstart/clevr-robot-smollm2.cleanrl_model"
# Part 13's priors, from the least data to the wrong goals; "lm" (all of the data) is the shipped one.
GRADED_PRIORS = ("lm-n30", "lm-n150", "lm-n600", "lm", "lm-mislabelled", "lm-shuffled")
# Part 18's: those with an MT10 version, on two Meta-World tasks (PAPER_TASKS, fixed with part 17).
GRADED_METAWORLD_PRIORS = ("lm-n30", "lm-n150", "lm-n600", "lm")
FINAL_PRIOR_LABELS = {
    "lm": "LM prior",
    "gru": "GRU prior (no LM)",
    "random-lm": "random-init LM prior",
    "lm-layer1": "LM prior, 1 layer",
    "lm-transfer": "LM prior, task unseen",
    "gemma": "Gemma-3-270M prior",
    "soft-token": "LaGO soft-token prior",
    "lm-n30": "LM prior, 1% of the data",
    "lm-n150": "LM prior, 5% of the data",
    "lm-n600": "LM prior, 20% of the data",
    "lm-mislabelled": "LM prior, goals mislabelled",
    "lm-shuffled": "LM prior, goals shuffled",
    "kickstart": "LM prior cloned into the actor",
}
# CLEVR-Robot: 200 PPO iterations of 8 envs x 128 steps. With CleanRL's learning rate (2.5e-4) vanilla
# PPO does not learn in this budget (entropy 3.675 of 3.689 at the end; sampled success 34%, random
# pushes 30%); 1e-3 was the best of five settings tried on vanilla PPO alone, seed 1, before any prior
# ran (docs/results.md, "Budgets"). Every configuration uses it.
FINAL_CLEVR_BUDGET = [
    "--total-timesteps",
    "204800",
    "--num-envs",
    "8",
    "--num-steps",
    "128",
    "--learning-rate",
    "1e-3",
    "--eval-episodes",
    "20",
]
FINAL_PPO_METAWORLD_BUDGET = [  # 10x the early grid's
    "--total-timesteps",
    "102400",
    "--num-steps",
    "512",
    "--num-minibatches",
    "8",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "20",
]
FINAL_SAC_BUDGET = [  # 10x the early grid's
    "--total-timesteps",
    "30000",
    "--learning-starts",
    "1000",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "20",
]


@dataclass(frozen=True)
class Run:
    algo: str  # "ppo", "sac", or "prior" (the prior acting alone: no training)
    env: str  # "clevr" or a Meta-World task
    prior: str  # "none", "lm" (fp32 LM), "lm-bf16" (bf16 LM, the shipped default), "mlp" or "random-lm"
    kl_coef: float
    seed: int
    split: str = "train"  # the instruction phrasings the prior is given while the agent trains
    grid: str = "early"  # "early": the first grid (earlier priors, small budgets); "final": see FINAL_*
    kl_schedule: str = "constant"  # "auto" or "linear" (kl_coef is then the coefficient's start)
    budget: str = "grid"  # "paper": the paper's env steps (PAPER_STEPS), checkpointed and resumable

    @property
    def config(self) -> str:
        """The configuration's name in tables and plots (everything but env and seed)."""
        if self.grid == "final":
            return self._final_config()
        if self.prior == "none":
            return f"{self.algo.upper()}"
        label = {
            "lm": "LM prior",
            "lm-bf16": "LM prior (bf16 LM)",
            "mlp": "MLP prior",
            "random-lm": "random-LM prior",
        }
        name = f"{self.algo.upper()} + {label[self.prior]}"
        return name if self.kl_coef == MAIN_KL[self.algo] else f"{name}, kl_coef {self.kl_coef:g}"

    def _final_config(self) -> str:
        if self.budget == "paper":
            return f"{self._grid_config()}, {PAPER_STEPS_LABEL[self.env == 'clevr']}"
        return self._grid_config()

    def _grid_config(self) -> str:
        if self.prior == "none":
            return self.algo.upper()
        if self.algo == "prior":
            return f"{FINAL_PRIOR_LABELS[self.prior]} alone"
        if self.prior == "kickstart":
            return "PPO from the LM prior cloned into its actor"
        name = f"{self.algo.upper()} + {FINAL_PRIOR_LABELS[self.prior]}"
        if self.kl_schedule == "auto":
            return f"{name}, kl_coef auto"
        if self.kl_schedule == "linear":
            return f"{name}, kl_coef {self.kl_coef:g} annealed to 0"
        return name if self.kl_coef == FINAL_MAIN_KL[self.algo] else f"{name}, kl_coef {self.kl_coef:g}"

    @property
    def run_id(self) -> str:
        split = "" if self.split == "train" else f"__{self.split}"
        kl = "auto" if self.kl_schedule == "auto" else f"{self.kl_coef:g}"
        kl += "-linear" if self.kl_schedule == "linear" else ""
        budget = "" if self.budget == "grid" else f"__{self.budget}"
        return f"{self.algo}__{self.env}{split}__{self.prior}__kl{kl}__seed{self.seed}{budget}"

    @property
    def data_dir(self) -> Path:
        """Where this run's record lies: each grid has its own folder."""
        return DATA if self.grid == "early" else FINAL_DATA

    @property
    def prior_path(self) -> Path | None:
        """The comparison prior's folder (None: no prior, or the script's default prior)."""
        if self.grid == "final":
            if self.prior == "none":
                return None
            if self.prior == "kickstart":  # an agent file, not a prior: the script's --init-model
                return REPO / KICKSTART_AGENT
            clevr, metaworld = FINAL_PRIORS[self.prior]
            path = clevr if self.env == "clevr" else metaworld
            if path is None:
                raise ValueError(f"no {self.prior!r} prior for {self.env}")
            return REPO / path
        if self.prior in ("none", "lm-bf16"):
            return None
        name = "smollm2-fp32" if self.prior == "lm" else self.prior
        return PRIORS / f"{'clevr-robot' if self.env == 'clevr' else 'metaworld-mt10'}-{name}"

    def command(self) -> list[str]:
        final = self.grid == "final"
        if self.algo == "prior":  # the prior acting alone, scored as the agents are (results.py)
            harness, split = str(REPO / "benchmark" / "results.py"), ["--split", self.split]
            seed, prior = str(self.seed + 10_000), str(self.prior_path)
            if self.env == "clevr":
                return [harness, "evaluate-clevr", prior, seed, *split]
            return [harness, "evaluate-metaworld", prior, self.env, seed, *split]
        if self.algo == "ppo" and self.env == "clevr":
            script, budget = "ppo_lago_clevr.py", FINAL_CLEVR_BUDGET if final else CLEVR_BUDGET
            env_args: list[str] = []
        elif self.algo == "ppo":
            script, budget = (
                "ppo_lago_metaworld.py",
                FINAL_PPO_METAWORLD_BUDGET if final else PPO_METAWORLD_BUDGET,
            )
            env_args = ["--env-id", self.env]
        else:
            script, budget = "sac_lago.py", FINAL_SAC_BUDGET if final else SAC_BUDGET
            env_args = ["--env-id", self.env]
        if self.budget == "paper":  # the paper's steps, a checkpoint every 20 iterations (results.py resumes)
            steps = budget.index("--total-timesteps") + 1
            budget = [*budget[:steps], str(PAPER_STEPS[self.env == "clevr"]), *budget[steps + 1 :]]
        every = "20" if self.budget == "paper" else "0"
        args = [str(REPO / "cleanrl_lago" / script), *env_args, *budget, "--seed", str(self.seed)]
        args += ["--kl-coef", f"{self.kl_coef:g}", "--save-model", "--checkpoint-every", every]
        if self.kl_schedule != "constant":
            args += ["--kl-schedule", self.kl_schedule]
        if self.split != "train":
            args += ["--instruction-split", self.split]
        if self.prior == "kickstart":
            args += ["--init-model", str(self.prior_path)]
        elif self.prior_path is not None:
            args += ["--prior", str(self.prior_path)]
        if final and self.prior == "lm-transfer":
            args += ["--prior-allow-unseen-tasks"]
        return args


def early_grid(seeds=SEEDS) -> list[Run]:
    """The early grid, in the order it runs: the main comparison first, seed-major (a grid cut short
    still has whole seeds), then SAC, then the kl_coef sweep.

    The random-LM prior (is it the pretrained knowledge or the architecture?) is compared on
    CLEVR-Robot, where the goal comes only from the instruction; on Meta-World the task is also
    in the observation. On CLEVR-Robot each prior guides PPO once with the phrasings it was trained
    on and once with held-out phrasings; vanilla PPO never reads the instruction (its observation
    holds the goal), so one vanilla run serves both.
    """
    runs = []
    for seed in seeds:
        for env in ("clevr", *METAWORLD_TASKS):
            runs.append(Run("ppo", env, "none", 0.0, seed))
            runs.append(Run("ppo", env, "mlp", MAIN_KL["ppo"], seed))
            runs.append(Run("ppo", env, "lm", MAIN_KL["ppo"], seed))
            if env == "clevr":
                runs.append(Run("ppo", env, "random-lm", MAIN_KL["ppo"], seed))
                for prior in ("mlp", "lm", "random-lm"):
                    runs.append(Run("ppo", env, prior, MAIN_KL["ppo"], seed, split="heldout"))
    for seed in seeds:
        for env in METAWORLD_TASKS:
            runs.append(Run("sac", env, "none", 0.0, seed))
            runs.append(Run("sac", env, "lm", MAIN_KL["sac"], seed))
    for seed in seeds:
        for kl in KL_SWEEP:
            runs.append(Run("ppo", "clevr", "lm", kl, seed))
    # The shipped default priors, trained with the LM in bf16 after the grid above was measured.
    for seed in seeds:
        for env in ("clevr", *METAWORLD_TASKS):
            runs.append(Run("ppo", env, "lm-bf16", MAIN_KL["ppo"], seed))
            if env == "clevr":
                runs.append(Run("ppo", env, "lm-bf16", MAIN_KL["ppo"], seed, split="heldout"))
            else:
                runs.append(Run("sac", env, "lm-bf16", MAIN_KL["sac"], seed))
    return runs


def final_grid(seeds=FINAL_SEEDS) -> list[Run]:
    """The final grid, in the order it runs: parts whose records answer a question on their own come
    first, seed-major inside each part (a part cut short still has whole seeds).

    1. CLEVR-Robot, the main comparison: vanilla PPO; the LM prior with the train phrasings and with
       held-out (test) phrasings; the GRU prior with held-out phrasings. Seeds 1-10.
    2. Meta-World PPO: five MT10 tasks, vanilla / LM prior / GRU prior, seeds 1-5.
    3. The GRU prior on CLEVR-Robot with the train phrasings, seeds 1-10.
    4. The kl_coef sweep on CLEVR-Robot (LM prior, train phrasings), seeds 1-3, and the auto schedule.
    5. Does a stronger LM guide better? The random-init LM and the 1-layer LM, both splits, seeds 1-5.
    6. Meta-World SAC: vanilla / LM prior / GRU prior, seeds 1-3.
    7. Transfer: PPO on the two MT10 tasks a prior never saw, vanilla / that prior, seeds 1-5.
    8. Meta-World PPO with held-out phrasings: the LM and GRU priors given the MT10 test phrasings
       (vanilla PPO never reads the instruction: part 2's runs are its baseline), seeds 1-3.
    9. CLEVR-Robot with held-out phrasings at kl_coef 1, where PPO follows its prior more closely (the
       sweep): do the LM, GRU and random-init LM priors, which differ alone, guide differently? Seeds 1-3.
    10. The transfer experiment's control: the shipped MT10 LM prior, which was trained on the two
        tasks, guides PPO on them. Can the budget show guidance on these tasks at all? Seeds 1-3.
    11. Does a larger LM guide better? The shipped design on Gemma-3-270M (twice SmolLM2-135M's
        parameters), both splits, seeds 1-5 (issue 24).
    12. Does LaGO's own design guide as well as the shipped one? One soft token through SmolLM2's first 4
        layers, trained to convergence (frozen LM), both splits, seeds 1-5 (issue 24).
    13. When does LaGO pay (issue 25)? Priors of graded quality (``GRADED_PRIORS``: 1%, 5%, 20% of the
        demonstrations, goals mislabelled, goals shuffled) guiding PPO at kl_coef 0.05 and 1, train phrasings, seeds 1-5.
    14. Each prior alone, on the same episodes and score as the agents: CLEVR-Robot (``PRIORS_ALONE``), seeds
        1-5; the MT10 LM and GRU priors on the five Meta-World tasks, seeds 1-5 (held-out phrasings 1-3).
    15. PPO + LM prior with kl_coef 1 annealed linearly to 0 over training (``--kl-schedule linear``), seeds 1-5.
    16. The kickstarting baseline: vanilla PPO from the shipped prior cloned into its actor
        (``KICKSTART_AGENT``), seeds 1-5.
    17. The paper's budgets (``PAPER_STEPS``): CLEVR-Robot at 1.5M env steps, PPO, PPO + LM prior at 0.05 and
        at the sweep's best coefficient, and with kl_coef 1 annealed to 0; push-v3 and pick-place-v3 at 1M
        steps, PPO and PPO + LM prior. Seeds 1-3; each run checkpoints and resumes (``results.py``).
    18. Part 13 on Meta-World (issue 25): the MT10 priors of graded quality (``GRADED_METAWORLD_PRIORS``), each
        alone and guiding PPO at kl_coef 0.05 and 1, on push-v3 and pick-place-v3, seeds 1-3 (part 2 ran
        vanilla PPO and the shipped prior at 0.05, part 14 the shipped prior alone).
    19. Part 11 on Meta-World (issue 24): the shipped MT10 design on Gemma-3-270M, alone and guiding PPO at
        kl_coef 0.05, on the five tasks, seeds 1-3 (beside part 2's PPO and SmolLM2 prior, part 14's alone).
    20. Part 12 on Meta-World (issue 24): LaGO's soft-token MT10 prior, alone and guiding PPO at kl_coef 0.05,
        on the five tasks, seeds 1-3.
    21. Does kl_coef 1 let a strong MT10 prior through (issues 24 and 25)? The shipped and the soft-token MT10
        priors guiding PPO at kl_coef 1 on the five tasks, seeds 1-3 (part 18 ran the shipped prior at 1 on
        push-v3 and pick-place-v3).
    """
    runs = []

    def first(n: int) -> list[int]:
        """The given seeds among a part's planned ones (the grid's first ``n``): ``--seeds 4`` must not
        run seed 4 of a part planned for seeds 1-3."""
        return [seed for seed in seeds if seed in FINAL_SEEDS[:n]]

    def add(algo, env, prior, seed, split="train", kl=None, schedule="constant"):
        kl = FINAL_MAIN_KL[algo] if kl is None else kl
        runs.append(Run(algo, env, prior, 0.0 if prior == "none" else kl, seed, split, "final", schedule))

    for seed in seeds:
        add("ppo", "clevr", "none", seed)
        add("ppo", "clevr", "lm", seed)
        add("ppo", "clevr", "lm", seed, "heldout")
        add("ppo", "clevr", "gru", seed, "heldout")
    for seed in first(5):
        for env in METAWORLD_TASKS:
            for prior in ("none", "lm", "gru"):
                add("ppo", env, prior, seed)
    for seed in seeds:
        add("ppo", "clevr", "gru", seed)
    for seed in first(3):
        for kl in FINAL_KL_SWEEP:
            add("ppo", "clevr", "lm", seed, kl=kl)
        add("ppo", "clevr", "lm", seed, schedule="auto")
    for seed in first(5):
        for split in ("train", "heldout"):
            for prior in ("random-lm", "lm-layer1"):
                add("ppo", "clevr", prior, seed, split)
    for seed in first(3):
        for env in METAWORLD_TASKS:
            for prior in ("none", "lm", "gru"):
                add("sac", env, prior, seed)
    for seed in first(5):
        for env in TRANSFER_TASKS:
            for prior in ("none", "lm-transfer"):
                add("ppo", env, prior, seed)
    for seed in first(3):
        for env in METAWORLD_TASKS:
            for prior in ("lm", "gru"):
                add("ppo", env, prior, seed, "heldout")
    for seed in first(3):
        for prior in ("lm", "gru", "random-lm"):
            add("ppo", "clevr", prior, seed, "heldout", kl=FINAL_CLOSE_KL)
    for seed in first(3):
        for env in TRANSFER_TASKS:
            add("ppo", env, "lm", seed)
    for prior in ("gemma", "soft-token"):  # parts 11 and 12
        for seed in first(5):
            for split in ("train", "heldout"):
                add("ppo", "clevr", prior, seed, split)
    for seed in first(5):  # part 13
        for prior in GRADED_PRIORS:
            for kl in (FINAL_MAIN_KL["ppo"], FINAL_CLOSE_KL):
                if prior != "lm":  # parts 1 and 4 ran the shipped prior
                    add("ppo", "clevr", prior, seed, kl=kl)
    for seed in first(5):  # part 14
        for prior, splits in PRIORS_ALONE.items():
            for split in splits:
                runs.append(Run("prior", "clevr", prior, 0.0, seed, split, "final"))
        for env in METAWORLD_TASKS:  # as parts 2 (seeds 1-5) and 8 (held-out phrasings, seeds 1-3)
            for prior in ("lm", "gru"):
                for split in ("train", "heldout") if seed in FINAL_SEEDS[:3] else ("train",):
                    runs.append(Run("prior", env, prior, 0.0, seed, split, "final"))
    for seed in first(5):  # part 15
        add("ppo", "clevr", "lm", seed, kl=FINAL_CLOSE_KL, schedule="linear")
    for seed in first(5):  # part 16
        add("ppo", "clevr", "kickstart", seed, kl=0.0)
    for seed in first(3):  # part 17
        for prior, kl, schedule in (
            ("none", 0.0, "constant"),
            ("lm", FINAL_MAIN_KL["ppo"], "constant"),
            ("lm", BEST_SWEEP_KL, "constant"),
            ("lm", FINAL_CLOSE_KL, "linear"),
        ):
            runs.append(Run("ppo", "clevr", prior, kl, seed, "train", "final", schedule, "paper"))
        for env in PAPER_TASKS:
            for prior in ("none", "lm"):
                kl = 0.0 if prior == "none" else FINAL_MAIN_KL["ppo"]
                runs.append(Run("ppo", env, prior, kl, seed, "train", "final", budget="paper"))
    for seed in first(3):  # part 18
        for env in PAPER_TASKS:
            for prior in GRADED_METAWORLD_PRIORS:
                if prior != "lm":  # part 14 ran the shipped prior alone
                    runs.append(Run("prior", env, prior, 0.0, seed, "train", "final"))
                for kl in (FINAL_MAIN_KL["ppo"], FINAL_CLOSE_KL):
                    if (prior, kl) != ("lm", FINAL_MAIN_KL["ppo"]):  # part 2 ran it
                        add("ppo", env, prior, seed, kl=kl)
    for prior in ("gemma", "soft-token"):  # parts 19 and 20
        for seed in first(3):
            for env in METAWORLD_TASKS:
                runs.append(Run("prior", env, prior, 0.0, seed, "train", "final"))
                add("ppo", env, prior, seed)
    for seed in first(3):  # part 21
        for env in METAWORLD_TASKS:
            for prior in ("lm", "soft-token"):
                if prior == "soft-token" or env not in PAPER_TASKS:  # part 18 ran the rest
                    add("ppo", env, prior, seed, kl=FINAL_CLOSE_KL)
    return runs


# Part 14: each CLEVR-Robot prior alone on the phrasing splits it guided PPO with, in order of use.
PRIORS_ALONE = {
    "lm": ("train", "heldout"),
    **{prior: ("train",) for prior in GRADED_PRIORS if prior != "lm"},
    "soft-token": ("train", "heldout"),
    "gemma": ("train", "heldout"),
    "gru": ("train", "heldout"),
    "random-lm": ("train", "heldout"),
    "lm-layer1": ("train", "heldout"),
}

GRIDS = {"early": early_grid, "final": final_grid}
