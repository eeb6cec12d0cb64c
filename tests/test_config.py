"""Configs: every shipped file validates; typos and bad values are named with file and line."""

from pathlib import Path

import pytest

from lrcn.config import ConfigError, apply_overrides, config_to_yaml
from lrcn.tasks import list_tasks, load_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert len(CONFIGS) >= 6


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    config = load_config(path)
    assert config.task in list_tasks()


def _write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


BASE = """task: activity
data:
  format: ucf101
  root: data/UCF-101
model:
  name: lrcn
  hidden_size: 64
"""


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = _write(tmp_path, BASE + "  hiden: 3\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:8: model.hiden: unknown key"):
        load_config(path)


def test_wrong_type_names_the_value(tmp_path):
    path = _write(tmp_path, BASE + "train:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:9: train.epochs: .*integer.*'ten'"):
        load_config(path)


def test_keys_of_another_model_are_refused(tmp_path):
    path = _write(tmp_path, BASE.replace("name: lrcn", "name: single_frame"))
    with pytest.raises(ConfigError, match=r"model.hidden_size: unknown key"):
        load_config(path)


def test_overrides_parse_yaml_values(tmp_path):
    path = _write(tmp_path, BASE)
    config = load_config(
        path, ["train.lr=0.01", "train.grad_clip=null", "model.num_layers=2", "data.split=3"]
    )
    assert config.train.lr == 0.01 and config.train.grad_clip is None
    assert config.model.num_layers == 2 and config.data.split == 3  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"expected key.path=value"):
        load_config(path, ["train.lr"])
    with pytest.raises(ConfigError, match=r"data.split: Input should be 1, 2 or 3"):
        load_config(path, ["data.split=4"])


def test_resolved_config_round_trips(tmp_path):
    config = load_config(_write(tmp_path, BASE))
    again = load_config(_write(tmp_path, config_to_yaml(config)))
    assert again == config


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "task: [activity\n"))
    with pytest.raises(
        ConfigError, match=r"exp.yaml:1: task: unknown task 'segmentation'; expected activity, "
    ):
        load_config(_write(tmp_path, "task: segmentation\n"))
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


def test_an_override_is_named_as_one_not_given_a_line_of_the_file(tmp_path):
    path = _write(tmp_path, BASE + "train:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["train.epochs=ten"])
    assert str(err.value).startswith("exp.yaml (--set): train.epochs:") or (
        "(--set): train.epochs:" in str(err.value)
    )
    assert "exp.yaml:9" not in str(err.value)


def test_device_and_group_pattern_are_checked_when_read(tmp_path):
    with pytest.raises(ConfigError, match=r"train.device: String should match"):
        load_config(_write(tmp_path, BASE), ["train.device=tpu"])
    with pytest.raises(ConfigError, match=r"data.group_pattern: not a valid regular"):
        load_config(_write(tmp_path, BASE), ["data.group_pattern=_g(\\d+"])
