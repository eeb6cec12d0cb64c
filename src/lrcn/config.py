"""Experiment configs: one flat YAML file with ``task``, ``data``, ``model`` and ``train``.

Loaded with ``yaml.safe_load`` and validated by pydantic models that forbid unknown keys, so a
typo fails loudly with the file, the key path and its line instead of being ignored.
``--set a.b=value`` overrides (the value is parsed as YAML: numbers, booleans, lists) are
applied before validation, and the resolved config is saved into the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ActivityConfig",
    "CaptioningConfig",
    "ConfigError",
    "TaskConfig",
    "apply_overrides",
    "config_to_yaml",
    "load_config",
]


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file, key and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoDataConfig(_Strict):
    """Where the videos are and how clips are cut from them."""

    format: Literal["ucf101", "hmdb51", "folders"]
    root: Path  # UCF-101/ folder, HMDB-51 videos folder, or <root>/<class>/ folders
    split: Literal[1, 2, 3] = 1
    split_dir: Path | None = None  # ucfTrainTestlist/ or testTrainMulti_7030_splits/
    split_file: Path | None = None  # folders: '<class>/<video> train|test' per line
    test_fraction: float = Field(0.2, gt=0, lt=1)  # folders without a split_file
    split_seed: int = 0
    group_pattern: str = r"_g(\d+)_"  # folders: regex whose first group names a source
    clip_len: int = Field(16, ge=1)
    stride: int = Field(8, ge=1)  # between test clips
    frame_step: int = Field(1, ge=1)  # frames skipped inside a clip
    short_video: Literal["loop", "repeat_last"] = "loop"
    on_error: Literal["raise", "skip"] = "raise"
    num_workers: int = Field(2, ge=0)


class _BackboneConfig(_Strict):
    """The per-frame CNN every activity model starts with."""

    backbone: str = "efficientnet_lite0"
    backbone_weights: Path | None = None  # torchvision:<arch>: a local state-dict file
    pretrained: bool = True
    freeze_backbone: bool = True
    image_size: int | None = Field(None, ge=32)  # crop side; None = the backbone's own (224)


class LRCNModelConfig(_BackboneConfig):
    name: Literal["lrcn"]
    hidden_size: int = Field(256, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class SingleFrameModelConfig(_BackboneConfig):
    name: Literal["single_frame"]
    dropout: float = Field(0.5, ge=0, lt=1)


class CNNConvLSTMModelConfig(_BackboneConfig):
    name: Literal["cnn_convlstm"]
    filters: int = Field(64, ge=1)
    kernel_size: int = Field(3, ge=1)
    dense_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


ActivityModelConfig = Annotated[
    LRCNModelConfig | SingleFrameModelConfig | CNNConvLSTMModelConfig,
    Field(discriminator="name"),
]


class TrainConfig(_Strict):
    """The optimisation loop."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["none", "cosine", "step"] = "cosine"
    step_size: int = Field(10, ge=1)  # epochs between decays, schedule=step
    gamma: float = Field(0.1, gt=0, le=1)  # decay factor, schedule=step
    grad_clip: float | None = Field(5.0, gt=0)
    amp: bool = True  # mixed precision, used on a GPU only
    clips_per_video: int = Field(1, ge=1)  # training clips drawn per video per epoch
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    feature_cache: Path | None = None  # frozen backbone: folder of cached features (default
    # <data root>/../.lrcn-features)
    eval_every: int = Field(1, ge=1)  # epochs between evaluations on the test split


class ActivityConfig(_Strict):
    """A whole activity-recognition experiment."""

    task: Literal["activity"]
    data: VideoDataConfig
    model: ActivityModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)


class CaptionDataConfig(_Strict):
    """Images with reference captions."""

    format: Literal["flickr8k", "karpathy", "coco"]
    root: Path  # flickr8k: the folder with Flicker8k_Dataset/; karpathy/coco: the image folder
    annotations: Path | None = None  # karpathy: dataset_*.json; coco: captions_train2014.json
    val_annotations: Path | None = None  # coco: captions_val2014.json
    val_root: Path | None = None  # coco: the val2014 image folder
    min_count: int = Field(5, ge=1)  # words seen fewer times become <unk>
    max_len: int = Field(20, ge=1)  # caption tokens kept for training (longer ones are cut)
    on_error: Literal["raise", "skip"] = "raise"
    num_workers: int = Field(2, ge=0)


class ShowAndTellConfig(_BackboneConfig):
    name: Literal["show_and_tell"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class LRCNCaptionerConfig(_BackboneConfig):
    name: Literal["lrcn_captioner"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    factored: bool = True
    num_layers: int = Field(2, ge=1)  # layers of the unfactored stack (factored: always 2)
    dropout: float = Field(0.5, ge=0, lt=1)


class ShowAttendTellConfig(_BackboneConfig):
    name: Literal["show_attend_tell"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    attention_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    attention_regularization: float = Field(1.0, ge=0)  # λ of the doubly stochastic term


CaptionModelConfig = Annotated[
    ShowAndTellConfig | LRCNCaptionerConfig | ShowAttendTellConfig, Field(discriminator="name")
]


class DecodeConfig(_Strict):
    """How captions are generated at evaluation and prediction."""

    beam_size: int = Field(3, ge=1)  # 1 = greedy
    max_len: int = Field(20, ge=1)
    length_penalty: float = Field(0.0, ge=0)  # GNMT alpha; 0 ranks by log-probability


class CaptioningConfig(_Strict):
    """A whole image-captioning experiment."""

    task: Literal["captioning"]
    data: CaptionDataConfig
    model: CaptionModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    decode: DecodeConfig = Field(default_factory=DecodeConfig)


TaskConfig = ActivityConfig | CaptioningConfig
_TASKS: dict[str, type[BaseModel]] = {"activity": ActivityConfig, "captioning": CaptioningConfig}


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (value parsed as YAML); returns a copy."""
    import copy

    result = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. train.lr=0.01")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return result


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key in a YAML text, by key path."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key_path = (*path, str(key_node.value))
                lines[key_path] = key_node.start_mark.line + 1
                walk(value_node, key_path)

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def load_config(path: str | Path, overrides: list[str] | None = None) -> TaskConfig:
    """Read, override and validate a config file.

    Raises:
        ConfigError: unreadable YAML, unknown task, unknown key or a bad value; the message
            names the file, the key path and (when it is in the file) its line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with task, data, model and train sections")
    raw = apply_overrides(raw, overrides or [])
    return validate_config(raw, source=str(path), key_lines=_key_lines(text))


def validate_config(
    raw: dict[str, Any],
    source: str = "<config>",
    key_lines: dict[tuple[str, ...], int] | None = None,
) -> TaskConfig:
    """Validate a config dict (see :func:`load_config`)."""
    task = raw.get("task")
    if task not in _TASKS:
        raise ConfigError(f"{source}: task: expected one of {sorted(_TASKS)}, got {task!r}")
    try:
        config = _TASKS[task].model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source, key_lines or {})) from None
    assert isinstance(config, ActivityConfig | CaptioningConfig)
    return config


_MODEL_TAGS = {
    "lrcn",
    "single_frame",
    "cnn_convlstm",
    "show_and_tell",
    "lrcn_captioner",
    "show_attend_tell",
}


def _describe(err: ValidationError, source: str, key_lines: dict[tuple[str, ...], int]) -> str:
    problems = []
    for e in err.errors():
        # Drop the discriminator tag pydantic inserts into the path ("model.lrcn.hidden").
        loc = [str(p) for p in e["loc"] if p not in _MODEL_TAGS]
        key = ".".join(loc) or "(top level)"
        line = None
        for n in range(len(loc), 0, -1):
            line = key_lines.get(tuple(loc[:n]))
            if line is not None:
                break
        where = f"{source}:{line}" if line is not None else source
        message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        if e["type"] != "extra_forbidden" and "input" in e and not isinstance(e["input"], dict):
            message += f" (got {e['input']!r})"
        problems.append(f"{where}: {key}: {message}")
    return "\n".join(problems)


def config_to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML (paths as strings), ready to save in a run folder."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
