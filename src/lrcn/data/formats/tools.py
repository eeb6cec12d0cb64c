"""``lrcn datasets ...``: prepare data sets on disk (splits, caption and annotation files).

Each tool is one call into a format module, registered in :mod:`lrcn.commands`; what it
returns is what the command prints, ending with the config keys to train with. The format
modules are imported inside the tools, so ``lrcn --help`` reads this module cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from lrcn.commands import Help, register_dataset_tool

__all__ = [
    "captions_from_csv",
    "moving_mnist",
    "msvd_split",
    "split_folders",
    "videos_from_csv",
    "vqa_from_csv",
]


@register_dataset_tool("captions-from-csv")
def captions_from_csv(
    images: Annotated[Path, Help("Folder of your photos.")],
    captions: Annotated[Path, Help("CSV (or TSV) with 'image' and 'caption' columns.")],
    out: Annotated[Path, Help("Karpathy split JSON to write.")] = Path("captions.json"),
    val_fraction: Annotated[float, Help("Share of images for validation.")] = 0.1,
    test_fraction: Annotated[float, Help("Share of images for testing.")] = 0.1,
    seed: Annotated[int, Help("Seed of the split.")] = 0,
) -> list[str]:
    """Turn a folder of photos and a CSV of captions into a Karpathy split JSON."""
    from lrcn.data.formats.captions import csv_to_karpathy

    counts = csv_to_karpathy(images, captions, out, val_fraction, test_fraction, seed)
    return [
        f"{out}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " images",
        f"train with data.format=karpathy, data.annotations={out}, data.root={images}",
    ]


@register_dataset_tool("split-folders")
def split_folders(
    root: Annotated[Path, Help("Videos in <root>/<class>/.")],
    out: Annotated[Path, Help("Split file to write.")] = Path("split.txt"),
    test_fraction: Annotated[float, Help("Share of each class for testing.")] = 0.2,
    seed: Annotated[int, Help("Seed of the split.")] = 0,
    group_pattern: Annotated[str, Help("Regex whose first group names a video's source.")] = (
        r"_g(\d+)_"
    ),
) -> list[str]:
    """Write a train/test split of a folder-per-class video set, keeping sources on one side."""
    from lrcn.data.formats.folders import list_videos, make_split, write_split_file

    classes, items = list_videos(root, group_pattern)
    train, test = make_split(items, test_fraction, seed)
    write_split_file(out, root, train, test)
    groups = len({(i.label, i.group) for i in items})
    return [
        f"{out}: {len(train)} train and {len(test)} test videos, {len(classes)} classes, ",
        f"{groups} source groups kept whole",
    ]


@register_dataset_tool("videos-from-csv")
def videos_from_csv(
    videos: Annotated[Path, Help("Folder of your videos (.mp4 .avi .mkv .webm).")],
    captions: Annotated[
        Path, Help("CSV (or TSV) with 'video' (file name in VIDEOS) and 'caption' columns.")
    ],
    out: Annotated[
        Path | None,
        Help(
            "MSR-VTT annotation file to write: VIDEOS/videodatainfo_2017.json (the default), "
            "or in VIDEOS's parent when VIDEOS is named videos."
        ),
    ] = None,
    val_fraction: Annotated[
        float, Help("Share of videos for validation (at least one).", min=0.0, max=1.0)
    ] = 0.1,
    test_fraction: Annotated[
        float, Help("Share of videos for testing (at least one).", min=0.0, max=1.0)
    ] = 0.2,
    seed: Annotated[int, Help("Seed of the split.")] = 0,
) -> list[str]:
    """Turn a folder of videos and a CSV of captions into an MSR-VTT annotation file (split
    per video)."""
    from lrcn.data.formats.video_csv import videos_csv_to_msrvtt

    written = videos_csv_to_msrvtt(videos, captions, out, val_fraction, test_fraction, seed)
    counts = ", ".join(f"{n} {side}" for side, n in written.videos.items())
    return [
        f"{written.path}: {counts} videos ({written.sentences} sentences)",
        f"train with data.format=msrvtt, data.root={written.root}",
    ]


@register_dataset_tool("msvd-split")
def msvd_split(
    root: Annotated[Path, Help("The MSVD folder, with YouTubeClips/ and its sentence file.")],
    out: Annotated[
        Path | None, Help("Split file to write (default: ROOT/msvd_split.json).")
    ] = None,
) -> list[str]:
    """Write a train/val/test split of the MSVD clips: the papers' 1200/100/670 sizes over the
    sorted clip names (not the papers' exact clips)."""
    import json

    from lrcn.data.formats.video_captions import write_msvd_split

    path = write_msvd_split(root, out)
    split = json.loads(path.read_text())
    counts = ", ".join(f"{len(split[side])} {side}" for side in ("train", "val", "test"))
    return [
        f"{path}: {counts} clips",
        f"train with data.format=msvd, data.root={root}, data.split_file={path}",
    ]


@register_dataset_tool("vqa-from-csv")
def vqa_from_csv(
    images: Annotated[Path, Help("Folder of your photos.")],
    questions: Annotated[
        Path,
        Help(
            "CSV (or TSV) with 'image' (a path in IMAGES), 'question' and 'answer' columns; "
            "several rows for one question are several people's answers."
        ),
    ],
    out: Annotated[
        Path | None, Help("Folder for the VQA v2 files and images.json (default: IMAGES).")
    ] = None,
    test_fraction: Annotated[
        float, Help("Share of images written as val2014, lrcn's test split.", min=0.0, max=1.0)
    ] = 0.2,
    seed: Annotated[int, Help("Seed of the split.")] = 0,
) -> list[str]:
    """Turn a folder of photos and a CSV of questions and answers into the VQA v2 layout (split
    per image)."""
    from lrcn.data.formats.vqa import csv_to_vqa

    counts = csv_to_vqa(images, questions, out, test_fraction, seed)
    folder = images if out is None else out
    return [
        f"{folder}: {counts['train_images']} train images ({counts['train_questions']} "
        f"questions), {counts['test_images']} test images ({counts['test_questions']} "
        f"questions), {counts['answers']} answers",
        f"train with task=vqa, data.root={folder}",
    ]


@register_dataset_tool("moving-mnist")
def moving_mnist(
    out: Annotated[Path, Help("Folder for train.npy and test.npy.")] = Path("data/moving-mnist"),
    train: Annotated[int, Help("Training sequences.", min=1)] = 10_000,
    test: Annotated[int, Help("Test sequences.", min=1)] = 1_000,
    frames: Annotated[int, Help("Frames per sequence (the protocol: 10 in, 10 out).", min=2)] = 20,
    size: Annotated[int, Help("Frame width and height in pixels.", min=28)] = 64,
    digits: Annotated[int, Help("Digits bouncing in each sequence.", min=1)] = 2,
    seed: Annotated[int, Help("Seed of the sequences.")] = 0,
    mnist: Annotated[
        Path | None,
        Help(
            "MNIST image file, IDX, optionally .gz, e.g. train-images-idx3-ubyte.gz; "
            "test digits are its last sixth, train digits the rest "
            "(default: scikit-learn's digits)."
        ),
    ] = None,
) -> list[str]:
    """Generate Moving MNIST sequences (Srivastava et al. 2015 rules; scikit-learn's digits, or
    MNIST's with --mnist) in the mnist_test_seq.npy layout; train and test share no digit."""
    from lrcn.data.formats.mnist_idx import idx_images_shape
    from lrcn.data.synthetic_moving_mnist import (
        digit_subset_indices,
        mnist_subset_indices,
        write_generated,
    )

    paths = write_generated(
        out, train, test, frames=frames, size=size, digits=digits, seed=seed, mnist=mnist
    )
    if mnist is None:
        source = "scikit-learn's 8x8 digits upscaled to 28x28"
        parts = [len(digit_subset_indices(side)) for side in ("train", "test")]
    else:
        count = idx_images_shape(mnist)[0]
        source = f"MNIST images {mnist}"
        parts = [len(mnist_subset_indices(side, count)) for side in ("train", "test")]
    return [
        f"{paths['train']}: uint8 ({frames}, {train}, {size}, {size}), {parts[0]} train digits",
        f"{paths['test']}: uint8 ({frames}, {test}, {size}, {size}), {parts[1]} test digits",
        f"digits: {source}; train and test share none",
    ]
