"""The feature cache never returns stale features: entries keyed by the source's content, the
folder by the backbone's actual weights; extraction is seeded like training."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lrcn.backbones import create_backbone
from lrcn.checkpoint import load_bundle
from lrcn.cli import app
from lrcn.data.features import FeatureCache, weights_digest
from lrcn.data.video_io import VideoError, read_frames, write_video
from lrcn.tasks._common import feature_cache
from lrcn.tasks.configs import validate_config

runner = CliRunner()


def _video(path, seed, frames=6):
    rng = np.random.default_rng(seed)
    write_video(path, rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8))
    return path


@pytest.fixture
def backbone():
    return create_backbone("simple_cnn", pretrained=False)


def _cache(tmp_path, backbone):
    return FeatureCache(tmp_path / "cache", {"weights": weights_digest(backbone)})


def _extract(cache, backbone, source):
    assert cache.extract([source], backbone, "pooled", torch.device("cpu")) == []


def test_a_video_replaced_in_place_is_extracted_again(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", seed=1)
    cache = _cache(tmp_path, backbone)
    _extract(cache, backbone, source)
    first = np.array(cache.load(source))
    _video(source, seed=2, frames=9)  # new content, new size, same path
    fresh = _cache(tmp_path, backbone)  # a later run
    assert fresh.missing([source]) == [source]
    _extract(fresh, backbone, source)
    assert fresh.load(source).shape[0] == 9 and first.shape[0] == 6


def test_same_size_new_content_is_caught_by_the_content_hash(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", seed=1)
    cache = _cache(tmp_path, backbone)
    _extract(cache, backbone, source)
    data = bytearray(source.read_bytes())
    data[-20] ^= 0xFF  # same size; mtime set back to the old one
    stat = os.stat(source)
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert _cache(tmp_path, backbone).missing([source]) == [source]


def test_a_touched_or_copied_video_keeps_its_entry(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", seed=1)
    cache = _cache(tmp_path, backbone)
    _extract(cache, backbone, source)
    os.utime(source, ns=(1, 1))  # same bytes, another mtime: the hash says it is the same
    assert _cache(tmp_path, backbone).missing([source]) == []
    key = json.loads(cache.key_path(source).read_text())
    assert key["stat"][0][1] == 1  # the new stat is remembered: no hashing next time


def test_an_entry_without_its_key_is_redone_and_a_wrong_shape_is_refused(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", seed=1)
    cache = _cache(tmp_path, backbone)
    _extract(cache, backbone, source)
    cache.key_path(source).unlink()  # as a kill between the entry and its key leaves it
    again = _cache(tmp_path, backbone)  # a later run
    assert again.missing([source]) == [source]
    _extract(again, backbone, source)
    np.save(cache.path_for(source), np.zeros((2, 3), dtype=np.float16))  # edited by hand
    with pytest.raises(VideoError, match="its key says float16"):
        _cache(tmp_path, backbone).load(source)


def test_the_folder_is_keyed_by_the_actual_weights(tmp_path):
    torch.manual_seed(0)
    a = create_backbone("simple_cnn", pretrained=False)
    torch.manual_seed(1)
    b = create_backbone("simple_cnn", pretrained=False)
    torch.manual_seed(0)
    c = create_backbone("simple_cnn", pretrained=False)
    assert weights_digest(a) != weights_digest(b)
    assert weights_digest(a) == weights_digest(c)
    with torch.no_grad():
        next(c.parameters())[0] += 1e-3
    assert weights_digest(a) != weights_digest(c)


def test_a_missing_source_is_a_video_error(tmp_path, backbone):
    cache = _cache(tmp_path, backbone)
    with pytest.raises(VideoError, match="file not found"):
        _extract(cache, backbone, tmp_path / "gone.avi")


@pytest.mark.slow
def test_extract_then_train_share_one_cache_and_the_bundle_makes_the_cached_features(
    order_ucf101, tmp_path
):
    """With a randomly initialised backbone: extract-features is seeded like train, so train
    reads its cache (nothing extracted again), and the trained bundle's backbone produces the
    very features its head was trained on."""
    raw = {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(order_ucf101), "clip_len": 8, "num_workers": 0},
        "model": {"name": "lrcn", "backbone": "efficientnet_lite0", "pretrained": False,
                  "image_size": 64, "hidden_size": 8},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu",
                  "feature_cache": str(tmp_path / "features")},
    }  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    first = runner.invoke(app, ["extract-features", str(config), "-q"])
    assert first.exit_code == 0, first.output
    folders = list((tmp_path / "features").iterdir())
    again = runner.invoke(app, ["extract-features", str(config), "-q"])
    assert again.exit_code == 0 and "extracting" not in again.output
    assert list((tmp_path / "features").iterdir()) == folders  # the same weights, one folder
    trained = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run"), "-q"])
    assert trained.exit_code == 0, trained.output
    assert "extracting" not in trained.output
    bundle = load_bundle(tmp_path / "run")
    video = sorted(order_ucf101.glob("*/*.avi"))[0]
    cache = feature_cache(validate_config(raw), bundle.model.backbone, "pooled")
    assert cache.folder == folders[0]
    with torch.no_grad():
        frames = bundle.model.backbone.preprocess.frames_to_tensor(read_frames(video))
        fresh = bundle.model.backbone(frames).numpy()
    cached = np.asarray(cache.load(video), dtype=np.float32)
    cosine = (
        (fresh * cached).sum(1) / np.linalg.norm(fresh, axis=1) / np.linalg.norm(cached, axis=1)
    )
    assert cosine.min() > 0.999


def test_a_cache_folder_copied_elsewhere_is_not_trusted_for_other_sources(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", seed=1)
    cache = _cache(tmp_path, backbone)
    _extract(cache, backbone, source)
    other = tmp_path / "w.avi"
    shutil.copy(source, other)
    entry = cache.path_for(source)
    shutil.copy(entry, cache.path_for(other))
    shutil.copy(cache.key_path(source), cache.key_path(other))  # names another source
    assert cache.missing([other]) == [other]
