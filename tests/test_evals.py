"""The evaluations of saved agents (cleanrl_lago/utils/evals.py): one signature and one return type for
the three scripts, as CleanRL's ``cleanrl_utils/evals``, and a clear refusal of the wrong environment."""

import inspect
from types import SimpleNamespace

import pytest

from cleanrl_lago.utils.evals import (
    Evaluation,
    evaluate_ppo_clevr,
    evaluate_ppo_metaworld,
    evaluate_sac,
    save_agent,
)

COMMON = ["model_path", "make_env", "env_id", "eval_episodes", "run_name", "Model", "device", "capture_video"]


def test_the_three_evaluations_share_one_signature():
    signatures = {f: inspect.signature(f) for f in (evaluate_ppo_metaworld, evaluate_sac, evaluate_ppo_clevr)}
    for f, signature in signatures.items():
        params = list(signature.parameters.values())
        assert [p.name for p in params[: len(COMMON)]] == COMMON, f.__name__
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[: len(COMMON)]), f.__name__
        extras = params[len(COMMON) :]
        assert extras[0].name == "seed" and all(p.kind is p.KEYWORD_ONLY for p in extras), f.__name__
        assert signature.return_annotation in (Evaluation, "Evaluation"), f.__name__
    defaults = [
        {name: p.default for name, p in s.parameters.items() if name in (*COMMON, "seed")}
        for s in signatures.values()
    ]
    assert defaults[0] == defaults[1] == defaults[2]
    assert [n for n in signatures[evaluate_ppo_clevr].parameters][len(COMMON) :] == [
        "seed",
        "split",
        "greedy",
    ]


def test_sac_evaluation_returns_episodes_and_refuses_another_env(tmp_path):
    import gymnasium as gym

    from cleanrl_lago.sac_lago import Actor, make_env

    actor = Actor(39, gym.spaces.Box(-1.0, 1.0, (4,)))
    path = str(tmp_path / "agent.cleanrl_model")
    args = SimpleNamespace(env_id="reach-v3", max_episode_steps=20)
    save_agent(path, args, actor=actor.state_dict(), tasks=["reach-v3"], obs_dim=39, act_dim=4)
    result = evaluate_sac(path, make_env, "reach-v3", 2, "t", Actor, "cpu", False, seed=3)
    assert isinstance(result, Evaluation) and len(result.episodic_returns) == len(result.successes) == 2
    assert result == evaluate_sac(path, make_env, "reach-v3", 2, "t", Actor, "cpu", False, seed=3)  # seeded
    with pytest.raises(
        ValueError, match=r"holds an agent for reach-v3, not for push-v3: pass env_id='reach-v3'"
    ):
        evaluate_sac(path, make_env, "push-v3", 2, "t", Actor, "cpu", False, seed=3)
