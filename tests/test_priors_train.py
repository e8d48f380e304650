"""Prior training on tiny datasets: splits, grouped batches, metrics, early stopping, evaluation as
a policy in the envs of cleanrl-lago's factory, the saved prior, a clear error on NaN; the commands
python -m cleanrl_lago.train_prior and python -m cleanrl_lago.convert_prior."""

import json

import numpy as np
import pytest
import torch

from cleanrl_lago import convert_prior, train_prior
from cleanrl_lago import demonstrations as demos
from cleanrl_lago.envs.prior_envs import clevr_env, metaworld_env
from priors import load_demonstrations, load_prior
from priors.conversion import ConvertSettings, convert
from priors.training import TrainSettings, grouped_batches, split_by_episode, train, validate

pytestmark = pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        demos.collect_clevr("t/clevr/expert-v0", episodes=40, seed=0)
        demos.collect_metaworld(["reach-v3"], "t/reach/expert-v0", episodes_per_task=3, max_episode_steps=60)
        demos.collect_metaworld(
            ["reach-v3", "push-v3"], "t/two/expert-v0", episodes_per_task=3, max_episode_steps=40
        )
        yield path


def test_split_keeps_episodes_whole_and_batches_group_instructions(datasets):
    data = load_demonstrations("t/clevr/expert-v0")
    train_rows, val_rows = split_by_episode(data, 0.25, seed=0)
    assert len(train_rows) + len(val_rows) == len(data) and len(val_rows) > 0
    assert not set(data.episode_ids[train_rows]) & set(data.episode_ids[val_rows])
    rows = next(grouped_batches(train_rows, data.instruction_ids, 32, 4, np.random.default_rng(0)))
    assert len(rows) == 32 and set(rows) <= set(train_rows)
    assert len(set(data.instruction_ids[rows])) <= 4


def test_train_lm_prior_end_to_end(datasets, tiny_lm, tmp_path):
    out = tmp_path / "prior"
    args = TrainSettings(
        dataset="t/clevr/expert-v0",
        output=str(out),
        lm=tiny_lm,
        n_obs_tokens=2,
        observation_dims=10,
        hidden_size=32,
        epochs=3,
        batch_size=32,
        instructions_per_batch=4,
        eval_episodes=3,
        runs_dir=str(tmp_path / "runs"),
    )
    seen = []
    prior = train(
        args,
        env_id="CLEVR-Robot-v0",
        make_env=clevr_env,
        command="python -m cleanrl_lago.train_prior ...",
        on_epoch=lambda e, m: seen.append(m["val_nll"]),
    )
    assert len(seen) >= 1 and all(np.isfinite(seen))
    config = json.loads((out / "config.json").read_text())
    provenance = config["provenance"]
    metrics = provenance["metrics"]
    assert metrics["val_nll"] == pytest.approx(min(seen), abs=1e-3)  # the best epoch is what was saved
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["expert_success_rate"] == 1.0
    assert 0 <= metrics["policy_success_train"] <= 1 and 0 <= metrics["policy_success_heldout"] <= 1
    assert (
        config["observation_dims"] == 10 and provenance["command"] == "python -m cleanrl_lago.train_prior ..."
    )
    assert config["env_id"] == "CLEVR-Robot-v0" and config["tasks"] is None
    assert provenance["dataset"] == "t/clevr/expert-v0"
    assert "val_nll" in (out / "README.md").read_text()
    assert list((tmp_path / "runs").iterdir())  # TensorBoard
    loaded = load_prior(out)
    obs = torch.rand(5, 24)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(obs, "Move the red ball to the left of the blue ball."),
            prior(obs, "Move the red ball to the left of the blue ball."),
        )


def test_train_mlp_prior_on_metaworld_and_early_stopping(datasets, tmp_path):
    out = tmp_path / "prior"
    args = TrainSettings(
        dataset="t/reach/expert-v0",
        output=str(out),
        kind="mlp",
        epochs=50,
        patience=1,
        learning_rate=0.3,  # far too high: the validation NLL stops improving at once
        batch_size=32,
        eval_episodes=1,
        eval_max_episode_steps=30,
        runs_dir=str(tmp_path / "runs"),
    )
    seen = []
    train(
        args,
        env_id="Meta-World/reach-v3",
        tasks=["reach-v3"],
        make_env=metaworld_env,
        on_epoch=lambda e, m: seen.append(m),
    )
    assert len(seen) < 50  # stopped early
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"] == ["reach-v3"] and config["env_id"] == "Meta-World/reach-v3"
    metrics = config["provenance"]["metrics"]
    assert "val_action_mse" in metrics
    # What is saved is the best epoch, not the last: the saved prior's validation NLL, recomputed here, is
    # the best epoch's recorded one (rounded to 4 decimals), and the last epoch's was worse.
    data = load_demonstrations("t/reach/expert-v0")
    val_rows = split_by_episode(data, args.val_fraction, args.seed)[1]
    recomputed = validate(
        load_prior(out), data, val_rows, instruction_ids=data.split_instruction_ids.get("validation")
    )
    assert recomputed["val_nll"] == pytest.approx(metrics["val_nll"], abs=1e-4)
    assert min(m["val_nll"] for m in seen) == pytest.approx(metrics["val_nll"], abs=1e-4)
    assert seen[-1]["val_nll"] > metrics["val_nll"] + 1e-3


def test_nan_observations_stop_training_with_a_clear_error(datasets, tmp_path, monkeypatch):
    data = load_demonstrations("t/clevr/expert-v0")
    data.observations[3, 1] = np.nan
    monkeypatch.setattr("priors.training.load_demonstrations", lambda *a, **k: data)
    args = TrainSettings(
        dataset="t/clevr/expert-v0", output=str(tmp_path / "p"), kind="mlp", eval_episodes=0, batch_size=16
    )
    with pytest.raises(ValueError, match=r"1 of \d+ steps of 't/clevr/expert-v0' hold NaN or inf"):
        train(args)
    assert not (tmp_path / "p").exists()


def test_convert_runs_a_trained_prior_at_another_precision(datasets, tiny_lm, tmp_path):
    trained = tmp_path / "fp32"
    train_args = TrainSettings(
        dataset="t/clevr/expert-v0",
        output=str(trained),
        lm=tiny_lm,
        n_obs_tokens=1,
        observation_dims=10,
        hidden_size=32,
        epochs=1,
        batch_size=32,
        eval_episodes=0,
        runs_dir=str(tmp_path / "runs"),
    )
    train(train_args, env_id="CLEVR-Robot-v0", command="X")
    out = tmp_path / "bf16"
    argv = [str(trained), str(out), "--eval-episodes", "2"]
    convert_prior.main(argv)  # the command passes the envs of the prior's recorded env id
    source = json.loads((trained / "config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert source["quantization"] == "none" and config["quantization"] == "bf16"
    assert config["provenance"]["command"] == "X && python -m cleanrl_lago.convert_prior " + " ".join(argv)
    assert config["provenance"]["dataset"] == "t/clevr/expert-v0"
    metrics, source_metrics = config["provenance"]["metrics"], source["provenance"]["metrics"]
    assert metrics["source_val_nll"] == source_metrics["val_nll"] and metrics["source_quantization"] == "none"
    # re-measured at bf16 (the set loss, CLEVR-Robot's training loss; at 4 decimals the NLL can tie) ...
    assert metrics["val_set_nll"] != metrics["source_val_set_nll"]
    assert metrics["val_set_nll"] == pytest.approx(metrics["source_val_set_nll"], abs=0.1)  # ... and close
    assert (
        0 <= metrics["policy_success_train"] <= 1 and metrics["train_steps"] == source_metrics["train_steps"]
    )
    converted = load_prior(out)
    assert next(converted.lm.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="already runs its LM at 'bf16'"):
        convert(ConvertSettings(str(out), str(tmp_path / "again"), eval_episodes=0))
    with pytest.raises(ValueError, match="needs make_env"):
        convert(ConvertSettings(str(trained), str(tmp_path / "again"), eval_episodes=1))


def test_evaluation_needs_an_env_factory(datasets, tmp_path):
    args = TrainSettings(dataset="t/clevr/expert-v0", output=str(tmp_path / "p"), kind="mlp", eval_episodes=1)
    with pytest.raises(ValueError, match="needs make_env"):
        train(args)
    assert not (tmp_path / "p").exists()


def test_train_prior_command_names_the_environment_and_itself(datasets, tmp_path):
    out = tmp_path / "prior"
    argv = ["--dataset", "t/reach/expert-v0", "--output", str(out), "--kind", "mlp", "--epochs", "1"]
    argv += ["--batch-size", "32", "--eval-episodes", "1", "--eval-max-episode-steps", "20"]
    argv += ["--runs-dir", str(tmp_path / "runs")]
    prior = train_prior.main(argv)
    config = json.loads((out / "config.json").read_text())
    assert config["env_id"] == "Meta-World/reach-v3" and config["tasks"] == ["reach-v3"]
    assert config["provenance"]["command"] == "python -m cleanrl_lago.train_prior " + " ".join(argv)
    assert prior.config.provenance.metrics["policy_success_train"] in (0.0, 1.0)
    with pytest.raises(
        FileNotFoundError, match="Collect it with: python -m cleanrl_lago.demonstrations --env clevr"
    ):
        train_prior.main(["--dataset", "cleanrl-lago/clevr-robot/expert-v0", "--output", str(tmp_path / "x")])


def test_time_budget_stops_after_the_epoch_that_spends_it(datasets, tmp_path):
    out = tmp_path / "prior"
    args = TrainSettings(
        dataset="t/reach/expert-v0",
        output=str(out),
        kind="mlp",
        patience=100,
        max_minutes=1e-9,  # spent during the first epoch
        batch_size=32,
        eval_episodes=0,
        runs_dir=str(tmp_path / "runs"),
    )
    seen = []
    train(args, env_id="Meta-World/reach-v3", tasks=["reach-v3"], on_epoch=lambda e, m: seen.append(e))
    assert seen == [1]
    metrics = json.loads((out / "config.json").read_text())["provenance"]["metrics"]
    assert (metrics["epoch"], metrics["stopped_by_time_budget"]) == (1.0, 1.0)


def test_excluded_tasks_are_never_seen(datasets, tmp_path):
    """A transfer prior: --exclude-tasks drops a task's steps from training and validation, and the prior
    lists only the others. Its observation statistics are those of the kept training steps exactly."""
    out = tmp_path / "prior"
    argv = ["--dataset", "t/two/expert-v0", "--output", str(out), "--kind", "mlp", "--epochs", "1"]
    argv += [
        "--batch-size",
        "16",
        "--eval-episodes",
        "0",
        "--no-successful-only",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    prior = train_prior.main([*argv, "--exclude-tasks", "push-v3"])
    assert prior.config.tasks == ["reach-v3"]
    data = load_demonstrations("t/two/expert-v0", successful_only=False)
    train_rows, _ = split_by_episode(data, 0.1, 0)
    kept = train_rows[np.array(data.tasks)[data.task_ids[train_rows]] == "reach-v3"]
    assert 0 < len(kept) < len(train_rows)
    np.testing.assert_allclose(prior.obs_mean.numpy(), data.observations[kept].mean(0), rtol=1e-5, atol=1e-6)
    for bad, message in (
        (["door-open-v3"], r"\['door-open-v3'\] are not tasks"),
        (["push-v3", "reach-v3"], "leaves no task"),
    ):
        with pytest.raises(ValueError, match=message):
            train_prior.main([*argv, "--output", str(tmp_path / "x"), "--exclude-tasks", *bad])


class Interrupted(Exception):
    pass


@pytest.mark.parametrize(
    "kind, options",
    [("lm", dict(n_obs_tokens=2)), ("lm-instruction", dict(lm_layers=1, lora_r=2, token_dropout=0.3))],
)
def test_a_resumed_training_saves_the_prior_of_an_uninterrupted_one_bit_for_bit(
    datasets, tiny_lm, tmp_path, kind, options
):
    def settings(output, **changes):
        return TrainSettings(
            dataset="t/clevr/expert-v0", output=str(tmp_path / output), lm=tiny_lm, kind=kind, observation_dims=10,
            hidden_size=32, patience=10, batch_size=32, instructions_per_batch=4, max_steps_per_epoch=3,
            eval_episodes=0, runs_dir=str(tmp_path / "runs"), **options, **{"epochs": 4, **changes},
        )  # fmt: skip

    whole = train(settings("whole"))

    def stop_after_epoch_2(epoch, metrics):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(settings("resumed"), on_epoch=stop_after_epoch_2)
    state = tmp_path / "resumed.training.pt"
    assert state.is_file() and not (tmp_path / "resumed").exists()
    with pytest.raises(ValueError, match=r"written with other settings \(--learning-rate\)"):
        train(settings("resumed", resume=True, learning_rate=1e-3))
    # A copy of the state resumes under another name, and a time budget set on resumption cuts the training
    # short: one more epoch, then the best of the three, the prior a three-epoch training saves
    copied = torch.load(state, weights_only=True)
    # written as a state of an earlier version, which recorded the output too
    copied["settings"]["output"] = str(state.with_name("resumed"))
    torch.save(copied, tmp_path / "cut.training.pt")
    epochs = []
    cut = train(settings("cut", resume=True, max_minutes=1e-6), on_epoch=lambda e, m: epochs.append(e))
    three = train(settings("three", epochs=3))
    assert epochs == [3] and cut.config.provenance.metrics["stopped_by_time_budget"] == 1.0
    expected, got = three.trainable_state_dict(), cut.trainable_state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    epochs = []
    resumed = train(settings("resumed", resume=True), on_epoch=lambda e, m: epochs.append(e))
    assert epochs == [3, 4] and not state.exists()
    expected, got = whole.trainable_state_dict(), resumed.trainable_state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    metrics = [load_prior(tmp_path / name).config.provenance.metrics for name in ("whole", "resumed")]
    for m in metrics:
        m.pop("train_seconds")
    assert metrics[0] == metrics[1]
    with pytest.raises(FileNotFoundError, match="no training state at"):
        train(settings("resumed", resume=True))
