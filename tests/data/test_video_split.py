"""Validation carved from the training list: whole group ids, for all classes at once."""

from pathlib import Path

import pytest

from lrcn.data.items import VideoItem
from lrcn.data.video_split import carve_validation


def _items(classes=4, groups=10, clips=2):
    return [
        VideoItem(Path(f"c{c}/v_g{g:02d}_c{k}.avi"), c, f"g{g:02d}")
        for c in range(classes)
        for g in range(groups)
        for k in range(clips)
    ]


def test_whole_group_ids_go_to_validation_for_every_class():
    train, val = carve_validation(_items(), 0.2, seed=3)
    assert len(val) == 16 and len(train) == 64  # 2 of 10 groups, 4 classes, 2 clips
    val_groups = {item.group for item in val}
    assert val_groups.isdisjoint({item.group for item in train})
    for label in range(4):  # the same held-out ids in every class
        assert {i.group for i in val if i.label == label} == val_groups


def test_every_class_keeps_training_videos_and_the_seed_decides():
    items = [*_items(groups=2), VideoItem(Path("c4/v_g07_c0.avi"), 4, "g07")]
    train, val = carve_validation(items, 0.5, seed=0)
    assert {i.label for i in train} == {0, 1, 2, 3, 4}  # class 4's only group stays
    assert val
    assert carve_validation(_items(), 0.2, seed=1) != carve_validation(_items(), 0.2, seed=2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        carve_validation(items, 0.0)
