"""Format readers on generated data in the real layouts, and every kind of broken entry."""

import shutil

import pytest

from lrcn.data.formats.folders import make_split, read_folders, write_split_file
from lrcn.data.formats.hmdb51 import read_hmdb51
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.items import DataError, VideoItem, find_group_leaks
from lrcn.data.synthetic import ORDER_CLASSES


@pytest.fixture
def ucf_copy(order_ucf101, tmp_path):
    """A writable copy of the generated UCF-101 layout, for breaking things."""
    shutil.copytree(order_ucf101.parent, tmp_path / "d")
    return tmp_path / "d" / "UCF-101"


def test_ucf101_official_splits_hold_out_disjoint_groups(order_ucf101):
    tests = []
    for split in (1, 2, 3):
        data = read_ucf101(order_ucf101, split=split)
        assert data.classes == list(ORDER_CLASSES)
        assert len(data.train) + len(data.test) == 20 and data.test
        assert data.group_leaks() == []
        assert all(item.path.exists() for item in data.train + data.test)
        tests.append({item.group for item in data.test})
    assert tests[0] != tests[1]


def test_ucf101_labels_come_from_class_folders(order_ucf101):
    data = read_ucf101(order_ucf101)
    for item in data.train + data.test:
        assert item.path.parent.name == data.classes[item.label]
        assert item.group.startswith("g")


def _break_line(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_ucf101_missing_video_is_named_with_its_line(ucf_copy):
    victim = next((ucf_copy / "CircleThenSquare").iterdir())
    victim.unlink()
    with pytest.raises(
        DataError,
        match=rf"trainlist01.txt:\d+: listed video .*{victim.name} does not exist|testlist01.txt:\d+: listed video",
    ):
        read_ucf101(ucf_copy)
    data = read_ucf101(ucf_copy, on_error="skip")
    assert len(data.skipped) == 1 and victim.name in data.skipped[0].problem
    assert len(data.train) + len(data.test) == 19


def test_ucf101_class_not_in_class_index(ucf_copy):
    lists = ucf_copy.parent / "ucfTrainTestlist"
    _break_line(lists / "testlist01.txt", "CircleThenSquare/", "Juggling/")
    with pytest.raises(
        DataError, match=r"testlist01.txt:1: class 'Juggling' is not in classInd.txt"
    ):
        read_ucf101(ucf_copy)


def test_ucf101_malformed_lines(ucf_copy):
    lists = ucf_copy.parent / "ucfTrainTestlist"
    first = (lists / "trainlist01.txt").read_text().splitlines()[0]
    _break_line(lists / "trainlist01.txt", first, first.split()[0])  # label dropped
    with pytest.raises(
        DataError, match=r"trainlist01.txt:1: expected '<Class>/<video>.avi <label>'"
    ):
        read_ucf101(ucf_copy)


def test_ucf101_wrong_label(ucf_copy):
    lists = ucf_copy.parent / "ucfTrainTestlist"
    first = (lists / "trainlist01.txt").read_text().splitlines()[0]
    _break_line(lists / "trainlist01.txt", first, first.rsplit(" ", 1)[0] + " 3")
    with pytest.raises(DataError, match=r"trainlist01.txt:1: label '3' does not match class"):
        read_ucf101(ucf_copy)


def test_ucf101_broken_class_index(ucf_copy):
    _break_line(ucf_copy.parent / "ucfTrainTestlist" / "classInd.txt", "2 ", "7 ")
    with pytest.raises(DataError, match=r"classInd.txt:2: expected class index 2, got 7"):
        read_ucf101(ucf_copy)


def test_hmdb51_layout(order_ucf101, tmp_path):
    """Rewrite the generated videos in the HMDB-51 layout and read them back."""
    root = tmp_path / "hmdb51"
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    data = read_ucf101(order_ucf101)
    for name in data.classes:
        (root / name).mkdir(parents=True)
        lines = []
        for item in data.train + data.test:
            if data.classes[item.label] == name:
                video = f"Film{item.group}_{name}_u_cm_np1_fr_med_0.avi"
                shutil.copy(item.path, root / name / video)
                lines.append(f"{video} {2 if item in data.test else 1} ")
        lines.append(f"Unused_{name}_x.avi 0 ")
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    hmdb = read_hmdb51(root, split=1)
    assert hmdb.classes == sorted(ORDER_CLASSES)
    assert len(hmdb.train) == len(data.train) and len(hmdb.test) == len(data.test)
    assert hmdb.group_leaks() == []
    assert {item.group for item in hmdb.test} == {f"Film{item.group}" for item in data.test}
    _break_line(splits / f"{data.classes[0]}_test_split1.txt", " 1 ", " 7 ")
    with pytest.raises(DataError, match=r"_test_split1.txt:\d+: expected '<video>.avi <0\|1\|2>'"):
        read_hmdb51(root, split=1)


def test_folders_with_a_made_split_keep_groups_together(order_ucf101):
    data = read_folders(order_ucf101, test_fraction=0.3, seed=3)
    assert data.classes == list(ORDER_CLASSES)
    assert data.group_leaks() == []
    assert 0.15 < len(data.test) / 20 < 0.45
    assert read_folders(order_ucf101, test_fraction=0.3, seed=3).test == data.test  # deterministic


def test_folders_split_file_round_trip_and_errors(order_ucf101, tmp_path):
    made = read_folders(order_ucf101, seed=0)
    split_file = tmp_path / "split.txt"
    write_split_file(split_file, order_ucf101, made.train, made.test)
    read = read_folders(order_ucf101, split_file=split_file)
    assert read.train == made.train and read.test == made.test
    split_file.write_text("Dancing/v1.mp4 train\nCircleThenSquare/nope.avi test\nbad line here x\n")
    with pytest.raises(DataError, match=r"split.txt:1: class 'Dancing' has no folder"):
        read_folders(order_ucf101, split_file=split_file)
    skipped = read_folders(order_ucf101, split_file=split_file, on_error="skip").skipped
    assert [s.problem.split(": ", 1)[0].rsplit(":", 1)[1] for s in skipped] == ["1", "2", "3"]


def test_leak_check_finds_a_group_on_both_sides(tmp_path):
    a = VideoItem(tmp_path / "a.avi", 0, "g01")
    b = VideoItem(tmp_path / "b.avi", 0, "g01")
    c = VideoItem(tmp_path / "c.avi", 1, "g01")  # same group name, other class: no leak
    assert find_group_leaks([a], [b, c]) == ["0/g01"]


def test_make_split_never_puts_a_group_on_both_sides(tmp_path):
    items = [
        VideoItem(tmp_path / f"{g}_{k}.avi", g % 3, f"g{g}") for g in range(30) for k in range(3)
    ]
    train, test = make_split(items, 0.25, seed=1)
    assert find_group_leaks(train, test) == []
    assert len(train) + len(test) == len(items)


def test_a_duplicated_split_line_is_refused_or_skipped_and_reported(ucf_copy):
    """A video listed twice would weigh twice in training and in the test metric."""
    lists = ucf_copy.parent / "ucfTrainTestlist"
    train_list = lists / "trainlist01.txt"
    first = train_list.read_text().splitlines()[0]
    train_list.write_text(train_list.read_text() + first + "\n")
    total = len(train_list.read_text().splitlines())
    with pytest.raises(
        DataError, match=rf"trainlist01.txt:{total}: duplicate: .* \(first on line 1\)"
    ):
        read_ucf101(ucf_copy, 1)
    split = read_ucf101(ucf_copy, 1, on_error="skip")
    assert len(split.train) == total - 1
    assert [p.problem for p in split.skipped] == [
        f"{train_list}:{total}: duplicate: {first.split()[0]!r} is listed again (first on line 1)"
    ]


def test_a_duplicated_class_is_blamed_on_the_class_index(ucf_copy):
    index = ucf_copy.parent / "ucfTrainTestlist" / "classInd.txt"
    names = [line.split()[1] for line in index.read_text().splitlines()]
    index.write_text(index.read_text() + f"{len(names) + 1} {names[0].lower()}\n")
    with pytest.raises(DataError, match=rf"classInd.txt:{len(names) + 1}: class .* listed twice"):
        read_ucf101(ucf_copy, 1)


def test_a_missing_data_root_says_so(tmp_path):
    from lrcn.data.video_split import VideoDataConfig, read_video_split

    config = VideoDataConfig(format="ucf101", root=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"nowhere: data\.root: data root not found"):
        read_video_split(config)
