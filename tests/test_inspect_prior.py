"""`python -m cleanrl_lago.inspect_prior`: PNGs of what a prior wants, and the numbers they draw."""

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from metaworld.policies import ENV_POLICY_MAP

from cleanrl_lago.envs.clevr_expert import expert_labels
from cleanrl_lago.envs.clevr_robot import instruction_text, split_templates
from cleanrl_lago.envs.metaworld_tasks import make_metaworld_env, task_instructions
from cleanrl_lago.inspect_prior import STEPS_AFTER_SUCCESS, clevr_panels, main, metaworld_episode
from priors import load_prior

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE


def test_clevr_command_writes_one_png_per_scene(tiny_priors, tmp_path, capsys):
    out = tmp_path / "pngs"
    written = main(
        [str(tiny_priors["clevr"]), "--scenes", "2", "--seed", "7", "--out", str(out), "--dpi", "40"]
    )
    assert written == [out / "clevr_scene7.png", out / "clevr_scene8.png"]
    assert sorted(out.iterdir()) == written
    for path in written:
        assert_png(path)
    assert "mass on good pushes: instruction" in capsys.readouterr().out


def test_clevr_panels_hold_the_priors_probabilities_and_the_experts_good_pushes(tiny_priors):
    prior = load_prior(tiny_priors["clevr"])
    panels = clevr_panels(prior, seed=3, split="validation")
    assert [p.kind for p in panels] == ["instruction", "paraphrase", "swapped goal"]

    env = gym.make("CLEVR-Robot-v0", instruction_split="validation").unwrapped
    obs, info = env.reset(seed=3)
    a, rel, b = env.goal
    positions = env.ball_positions()
    templates = split_templates("validation")
    assert panels[0].instruction == info["instruction"]
    assert panels[1].instruction != panels[0].instruction and panels[1].instruction in [
        instruction_text((a, rel, b), t) for t in templates
    ]
    template = next(t for t in templates if instruction_text((a, rel, b), t) == panels[0].instruction)
    assert panels[2].instruction == instruction_text((b, rel, a), template)
    assert [p.goal for p in panels] == [(a, rel, b), (a, rel, b), (b, rel, a)]
    _, good = expert_labels(env)
    for panel in panels:
        np.testing.assert_array_equal(panel.positions, positions)
        if panel.goal != (a, rel, b):
            obs, _ = env.reset(options={"goal": panel.goal, "ball_positions": positions})
            _, good = expert_labels(env)
        logits = prior.predict(torch.as_tensor(obs[None]), panel.instruction)
        np.testing.assert_array_equal(panel.probs, torch.softmax(logits, -1)[0].numpy().astype(np.float64))
        np.testing.assert_array_equal(panel.good, good)
        assert panel.good.any() and panel.good_mass == pytest.approx(panel.probs[good].sum(), abs=0)
        assert panel.probs.sum() == pytest.approx(1.0, abs=1e-6)
    # The swapped goal's good pushes are not the goal's (on this scene).
    assert not np.array_equal(panels[0].good, panels[2].good)


def test_metaworld_command_writes_the_first_tasks_png(tiny_priors, tmp_path, capsys):
    written = main([str(tiny_priors["reach"]), "--out", str(tmp_path), "--max-steps", "60", "--dpi", "40"])
    assert written == [tmp_path / "metaworld_reach-v3.png"]
    assert_png(written[0])
    assert "first success at step" in capsys.readouterr().out


def test_metaworld_episode_holds_the_priors_gaussian_and_the_experts_actions(tiny_priors):
    prior = load_prior(tiny_priors["reach"])
    episode = metaworld_episode(prior, "reach-v3", seed=5, split="heldout", max_steps=200)
    assert episode.instruction == task_instructions("reach-v3", "heldout")[0]
    # The expert, replayed by hand from the same seeds.
    env = make_metaworld_env("reach-v3", seed=5, max_episode_steps=200)
    policy = ENV_POLICY_MAP["reach-v3"]()
    obs, _ = env.reset(seed=5)
    observations, actions, success_steps = [], [], []
    for step in range(len(episode.expert_actions)):
        action = np.clip(policy.get_action(obs), -1.0, 1.0).astype(np.float32)
        observations.append(obs)
        actions.append(action)
        obs, _, _, _, info = env.step(action)
        if info["success"]:
            success_steps.append(step)
    np.testing.assert_array_equal(episode.observations, np.asarray(observations, dtype=np.float32))
    np.testing.assert_array_equal(episode.expert_actions, np.stack(actions))
    # reach-v3's expert succeeds well within 200 steps; the episode stops ten steps later.
    assert episode.first_success == success_steps[0]
    assert len(episode.expert_actions) == episode.first_success + STEPS_AFTER_SUCCESS + 1
    params = (
        prior.predict(torch.as_tensor(episode.observations), episode.instruction).numpy().astype(np.float64)
    )
    np.testing.assert_array_equal(episode.means, params[:, :4])
    np.testing.assert_array_equal(episode.stds, np.exp(params[:, 4:]))
    assert episode.means.shape == episode.stds.shape == episode.expert_actions.shape == (len(actions), 4)


@pytest.mark.parametrize(
    ("which", "options", "message"),
    [
        ("clevr", ["--scenes", "0"], "--scenes 0 is out of range"),
        ("clevr", ["--split", "heldout-ish"], "CLEVR-Robot splits are"),
        ("clevr", ["--tasks", "reach-v3"], "--tasks is for Meta-World priors"),
        ("reach", ["--tasks", "push-v3"], "this prior was trained on ['reach-v3']"),
        ("reach", ["--split", "heldout-ish"], "Meta-World splits are"),
        ("reach", ["--max-steps", "0"], "--max-steps 0 is out of range"),
    ],
)
def test_bad_input_is_refused(tiny_priors, tmp_path, which, options, message):
    with pytest.raises(ValueError) as error:
        main([str(tiny_priors[which]), "--out", str(tmp_path / "out"), *options])
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_without_matplotlib_the_command_says_how_to_install_it(tiny_priors, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(SystemExit, match="pip install matplotlib"):
        main([str(tiny_priors["clevr"]), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
