"""Saving and loading priors: round trips, folder contents, every refusal, atomic writes."""

import copy
import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import INSTRUCTIONS, make_tiny_lm, observation_space, random_obs, trained_like
from safetensors.torch import load_file, save_file

from priors import LoraSettings, PriorLoadError, Provenance, build_prior, load_lm, load_prior, save_prior
from priors.atomic import write_folder_atomically

DISCRETE = gym.spaces.Discrete(5)
BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

pytestmark = pytest.mark.usefixtures("lago_cache")  # conftest: a temporary conversion cache


@pytest.fixture(scope="module")
def saved_discrete(tiny_lm, tmp_path_factory):
    """A saved LM prior for Discrete(5) on env 'Toy-v0'."""
    prior = trained_like(
        build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm, env_id="Toy-v0")
    )
    path = tmp_path_factory.mktemp("saved") / "prior"
    save_prior(prior, path, metrics={"val_nll": 0.5}, command="python -m train --env Toy-v0")
    return prior, path


@pytest.mark.parametrize(
    "kind,action_space,options",
    [
        ("lm", BOX, {"lora": LoraSettings(r=4, alpha=8)}),
        ("lm-instruction", DISCRETE, {"lora": LoraSettings(r=4, alpha=8)}),
        ("lm", DISCRETE, {"lm_random_init_seed": 0}),
        ("mlp", BOX, {}),
    ],
    ids=["lm-lora-box", "lm-instruction-lora-discrete", "random-lm-discrete", "mlp-box"],
)
def test_round_trip_gives_identical_outputs(tiny_lm, tmp_path, kind, action_space, options):
    prior = trained_like(
        build_prior(
            observation_space=observation_space(), action_space=action_space, lm=tiny_lm, kind=kind, **options
        )
    )
    split = {"train": INSTRUCTIONS[:3], "held_out": INSTRUCTIONS[3:]}
    built = copy.deepcopy(prior.config)
    save_prior(prior, tmp_path / "p", instruction_split=split)
    assert prior.config == built  # saving records the provenance in the folder, not in the prior
    loaded = load_prior(tmp_path / "p")
    assert type(loaded) is type(prior) and loaded.config == dataclasses.replace(
        prior.config, provenance=Provenance(instruction_split=split)
    )
    obs, instructions = random_obs(6, seed=5), [INSTRUCTIONS[i % 4] for i in range(6)]
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, instructions), prior(obs, instructions), atol=0, rtol=0)
    torch.testing.assert_close(loaded.obs_mean, prior.obs_mean, atol=0, rtol=0)


def test_saved_folder_holds_config_trainable_weights_and_card(saved_discrete):
    prior, path = saved_discrete
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not any(p.name.startswith(".prior") for p in path.parent.iterdir())  # no temp folders left

    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == 3 and config["kind"] == "lm" and config["env_id"] == "Toy-v0"
    assert config["lm_fingerprint"] == prior.config.lm_fingerprint and config["quantization"] == "none"
    assert config["observation_space"] == {
        "type": "Box",
        "shape": [7],
        "low": ["-inf"] * 7,
        "high": ["inf"] * 7,
    }
    assert config["action_space"] == {"type": "Discrete", "n": 5}
    assert (
        config["prompt_format"] == "Instruction: {instruction}\nObservation:" and config["n_obs_tokens"] == 4
    )
    assert config["lora"] is None and config["provenance"] == {
        "command": "python -m train --env Toy-v0",
        "metrics": {"val_nll": 0.5},
        "dataset": None,
        "instruction_split": None,
        "notes": [],
    }

    tensors = load_file(path / "model.safetensors")
    assert not any(name.startswith("lm.") for name in tensors)  # never the frozen LM
    trainable = {name for name, p in prior.named_parameters() if p.requires_grad}
    assert set(tensors) == trainable | {"obs_mean", "obs_std", "token_scale"}

    card = (path / "README.md").read_text()
    front_matter = card.split("---")[1]
    assert "library_name: cleanrl-lago" in front_matter
    assert '- "reinforcement-learning"' in front_matter and '- "lago"' in front_matter
    assert "val_nll" in card and "python -m train --env Toy-v0" in card


def test_load_checks_pass_for_the_right_env(saved_discrete):
    prior, path = saved_discrete
    loaded = load_prior(
        path, expected_observation_space=observation_space(), expected_action_space=DISCRETE, env_id="Toy-v0"
    )
    assert loaded.config.env_id == "Toy-v0"


def test_refuses_a_prior_built_for_another_lm(saved_discrete, tmp_path):
    _, path = saved_discrete
    other = make_tiny_lm(tmp_path / "other-lm", seed=1)
    with pytest.raises(PriorLoadError, match="LM fingerprint mismatch.*Pass lm="):
        load_prior(path, lm=str(other))
    with pytest.raises(PriorLoadError, match="LM fingerprint mismatch"):
        load_prior(path, lm=load_lm(str(other)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"expected_observation_space": observation_space(9)}, r"Observation size mismatch.*\(7,\).*\(9,\)"),
        ({"expected_action_space": gym.spaces.Discrete(4)}, "Action space mismatch"),
        ({"expected_action_space": BOX}, "Action space mismatch"),
        ({"env_id": "Other-v1"}, "trained on env 'Toy-v0', not 'Other-v1'"),
    ],
)
def test_refuses_mismatched_environments(saved_discrete, kwargs, message):
    _, path = saved_discrete
    with pytest.raises(PriorLoadError, match=message):
        load_prior(path, **kwargs)


def test_refuses_box_with_other_bounds(tmp_path):
    prior = build_prior(observation_space=observation_space(), action_space=BOX, kind="mlp")
    save_prior(prior, tmp_path / "p")
    with pytest.raises(PriorLoadError, match="Action space mismatch"):
        load_prior(tmp_path / "p", expected_action_space=gym.spaces.Box(-2.0, 2.0, (3,)))


@pytest.fixture
def copy_of_saved(saved_discrete, tmp_path):
    import shutil

    _, path = saved_discrete
    return shutil.copytree(path, tmp_path / "copy")


def test_refuses_missing_files(copy_of_saved, tmp_path):
    with pytest.raises(PriorLoadError, match="No prior folder"):
        load_prior(tmp_path / "does-not-exist")
    (copy_of_saved / "model.safetensors").unlink()
    with pytest.raises(PriorLoadError, match="has no model.safetensors"):
        load_prior(copy_of_saved)
    (copy_of_saved / "config.json").unlink()
    with pytest.raises(PriorLoadError, match="has no config.json"):
        load_prior(copy_of_saved)


def test_refuses_truncated_safetensors(copy_of_saved):
    data = (copy_of_saved / "model.safetensors").read_bytes()
    (copy_of_saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(PriorLoadError, match="corrupt or truncated"):
        load_prior(copy_of_saved)
    (copy_of_saved / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(PriorLoadError, match="corrupt or truncated"):
        load_prior(copy_of_saved)


def test_refuses_corrupt_or_foreign_config(copy_of_saved):
    config_file = copy_of_saved / "config.json"
    text = config_file.read_text()
    config_file.write_text(text[: len(text) // 2])
    with pytest.raises(PriorLoadError, match="corrupt or truncated"):
        load_prior(copy_of_saved)
    config = json.loads(text)
    config_file.write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(PriorLoadError, match="format version 99"):
        load_prior(copy_of_saved)
    config_file.write_text(json.dumps({**config, "n_obs_tokens": 2}))
    with pytest.raises(PriorLoadError, match="does not match its config"):
        load_prior(copy_of_saved)


def test_refuses_nan_weights(copy_of_saved):
    tensors = load_file(copy_of_saved / "model.safetensors")
    tensors["action_head.1.2.bias"][0] = float("nan")
    save_file(tensors, str(copy_of_saved / "model.safetensors"))
    with pytest.raises(PriorLoadError, match=r"NaN or infinite values in action_head\.1\.2\.bias"):
        load_prior(copy_of_saved)


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "prior"

    def fail_midway(folder):
        (folder / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder_atomically(target, fail_midway)
    assert list(tmp_path.iterdir()) == []

    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, kind="mlp")
    save_prior(prior, target, metrics={"val_nll": 1.0})
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(TypeError):  # a metric that JSON cannot hold fails inside the write
        save_prior(prior, target, metrics={"val_nll": object()})
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["prior"]
    assert prior.config.provenance.metrics == {}  # saving never writes into the prior's own config

    # Replacing an existing prior works and leaves no old copy behind.
    save_prior(prior, target, metrics={"val_nll": 0.25})
    assert json.loads((target / "config.json").read_text())["provenance"]["metrics"] == {"val_nll": 0.25}
    assert [p.name for p in tmp_path.iterdir()] == ["prior"]


def test_unknown_config_keys_are_ignored_with_a_warning(copy_of_saved, saved_discrete):
    _, path = saved_discrete
    config_file = copy_of_saved / "config.json"
    config = json.loads(config_file.read_text())
    config["sparsity"] = 0.5  # from a newer version, say
    config["provenance"]["reviewer"] = "someone"
    config_file.write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"ignoring unknown field\(s\) provenance\.reviewer, sparsity"):
        loaded = load_prior(copy_of_saved)
    assert loaded.config == load_prior(path).config


def test_reads_the_flat_version_1_layout(copy_of_saved, saved_discrete):
    prior, _ = saved_discrete
    config_file = copy_of_saved / "config.json"
    config = json.loads(config_file.read_text())
    provenance = config.pop("provenance")
    version_1 = {
        **config,
        "format_version": 1,
        "metrics": provenance["metrics"],
        "command": provenance["command"],
        "instruction_split": {"trained_on": "train", "held_out": "heldout", "dataset": "org/demos-v0"},
    }
    config_file.write_text(json.dumps(version_1))
    loaded = load_prior(copy_of_saved)
    assert loaded.config.format_version == 3
    assert loaded.config.provenance.metrics == {"val_nll": 0.5}
    assert loaded.config.provenance.command == "python -m train --env Toy-v0"
    assert loaded.config.provenance.dataset == "org/demos-v0"
    assert loaded.config.provenance.instruction_split == {"trained_on": "train", "held_out": "heldout"}
    assert loaded.config.lm_fingerprint == prior.config.lm_fingerprint


def test_load_refuses_tasks_and_action_bounds_the_prior_was_not_built_for(tmp_path):
    """Killed mutants of _check_spaces: the task check's conditions and set difference, the Box bounds."""
    box = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
    prior = build_prior(
        observation_space=observation_space(), action_space=box, kind="mlp", env_id="Toy-v0", tasks=["a", "b"]
    )
    path = save_prior(prior, tmp_path / "prior")
    assert load_prior(path, tasks=["b"]).config.tasks == ["a", "b"]  # a subset of its tasks
    with pytest.raises(PriorLoadError, match=r"trained on the tasks \['a', 'b'\], not on \['c'\]"):
        load_prior(path, tasks=["b", "c"])
    # the explicit opt-in for transfer to unseen tasks loads the same prior, with a warning naming them
    with pytest.warns(UserWarning, match=r"not on \['c'\]: it guides them from their instructions alone"):
        transfer = load_prior(path, tasks=["b", "c"], allow_unseen_tasks=True)
    obs = random_obs(3)
    with torch.no_grad():
        torch.testing.assert_close(transfer(obs, "x"), load_prior(path)(obs, "x"))
    assert load_prior(path, expected_action_space=box).config.tasks == ["a", "b"]
    wider = gym.spaces.Box(-2.0, 2.0, (4,), dtype=np.float32)
    for other in (wider, gym.spaces.Box(-1.0, 2.0, (4,), dtype=np.float32), gym.spaces.Box(-1.0, 1.0, (3,))):
        with pytest.raises(PriorLoadError, match="ction"):
            load_prior(path, expected_action_space=other)
    untasked = save_prior(
        build_prior(observation_space=observation_space(), action_space=box, kind="mlp", env_id="Toy-v0"),
        tmp_path / "untasked",
    )
    assert load_prior(untasked, tasks=["anything"]).config.tasks is None  # nothing to check against


@pytest.mark.parametrize("change", ["drop", "add"])
def test_load_refuses_weights_with_a_tensor_missing_or_one_too_many(change, tmp_path):
    """Either alone is refused (a mutant that needed both survived)."""
    prior = build_prior(
        observation_space=observation_space(), action_space=DISCRETE, kind="mlp", env_id="Toy-v0"
    )
    path = save_prior(prior, tmp_path / "prior")
    tensors = load_file(path / "model.safetensors")
    if change == "drop":
        tensors.pop(sorted(tensors)[0])
    else:
        tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(PriorLoadError, match="does not match its config"):
        load_prior(path)


def test_atomic_writes_give_the_modes_plain_writes_would(tmp_path, monkeypatch):
    """The temporary file and folder (created private by tempfile) end with the umask's usual modes: a saved
    prior or checkpoint is as readable as any other file its user writes."""
    from priors import atomic

    monkeypatch.setattr(atomic, "_UMASK", 0o027)
    file = atomic.write_file_atomically(tmp_path / "checkpoint.pt", lambda f: f.write(b"x"))
    folder = atomic.write_folder_atomically(
        tmp_path / "prior", lambda d: (d / "config.json").write_text("{}")
    )
    assert (file.stat().st_mode & 0o777, folder.stat().st_mode & 0o777) == (0o640, 0o750)
