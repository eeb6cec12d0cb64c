"""Optical flow frames, stored the LRCN way so a flow model reads them like RGB frames.

For each pair of consecutive frames we compute dense flow with OpenCV (Farnebäck) and write
one image whose three channels are the flow's x component, y component and magnitude, each as
``clip(value * 16 + 128, 0, 255)`` (LRCN section 4: flow centred at 128 and scaled, magnitude
as the third channel). A video of T frames gives T-1 flow images.

A flow data set mirrors the video data set: the flow of ``<root>/<Class>/<video>.avi`` is the
folder of images ``<flow_root>/<Class>/<video>.avi/``, and the split files are copied beside
it. The same format reader and split files therefore read the flow data set unchanged (a path
that is a folder is read as one image per frame).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrcn.data.items import OnError, Problem, VideoItem
from lrcn.data.video_io import FRAME_IMAGE_SUFFIXES, VideoError, read_frames

if TYPE_CHECKING:
    from lrcn.data.video_split import VideoDataConfig

SCALE = 16.0
CENTER = 128.0

__all__ = ["encode_flow", "flow_at", "flow_images", "write_flow_dataset"]


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """``float (H, W, 2)`` flow in pixels -> ``uint8 (H, W, 3)``: x, y, magnitude."""
    magnitude = np.sqrt((flow**2).sum(axis=2, keepdims=True))
    channels = np.concatenate([flow, magnitude], axis=2) * SCALE + CENTER
    return np.clip(np.rint(channels), 0, 255).astype(np.uint8)


def flow_images(frames: np.ndarray) -> np.ndarray:
    """``uint8 (T, H, W, 3)`` RGB frames -> ``uint8 (T-1, H, W, 3)`` encoded flow images."""
    import cv2

    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    out = np.empty((len(frames) - 1, *frames.shape[1:3], 3), dtype=np.uint8)
    for t in range(len(frames) - 1):
        flow = cv2.calcOpticalFlowFarneback(
            gray[t], gray[t + 1], None,  # type: ignore[call-overload, unused-ignore]
            pyr_scale=0.5, levels=3, winsize=15,
            iterations=3, poly_n=5, poly_sigma=1.2, flags=0,
        )  # fmt: skip
        out[t] = encode_flow(flow)
    return out


def flow_at(path: str | Path, indices: Sequence[int], num_frames: int) -> np.ndarray:
    """Encoded flow images from frame ``i`` to ``i + 1`` for each ``i`` of ``indices`` (from
    ``i - 1`` to ``i`` at the last frame): ``uint8 (len(indices), H, W, 3)``. Only the frames
    those pairs need are decoded, so sampled flow of a long video stays small."""
    if num_frames < 2:
        raise VideoError(path, f"has {num_frames} frame; optical flow needs at least 2")
    starts = [min(i, num_frames - 2) for i in indices]
    needed = sorted({s for s in starts} | {s + 1 for s in starts})
    frames = read_frames(path, needed)  # (N, H, W, 3)
    at = {index: k for k, index in enumerate(needed)}
    return np.concatenate([flow_images(frames[[at[s], at[s + 1]]]) for s in starts])


def _has_flow(folder: Path, expected: int) -> bool:
    if not folder.is_dir():
        return False
    return sum(1 for p in folder.iterdir() if p.suffix in FRAME_IMAGE_SUFFIXES) == expected


def write_flow_dataset(
    items: Sequence[VideoItem],
    video_root: str | Path,
    flow_root: str | Path,
    split_dirs: Sequence[Path] = (),
    on_error: OnError = "raise",
    progress: Callable[[int, int], None] | None = None,
) -> list[Problem]:
    """Write flow images for ``items`` under ``flow_root`` (mirroring ``video_root``).

    Videos whose flow folder is already complete are skipped, so an interrupted run resumes.
    ``split_dirs`` (e.g. ``ucfTrainTestlist``) are copied beside the mirrored root.

    Returns:
        Videos skipped under ``on_error="skip"``.
    """
    import cv2

    video_root, flow_root = Path(video_root), Path(flow_root)
    skipped: list[Problem] = []
    for split_dir in split_dirs:
        shutil.copytree(split_dir, flow_root.parent / split_dir.name, dirs_exist_ok=True)
    for done, item in enumerate(items, start=1):
        folder = flow_root / Path(item.path).relative_to(video_root)
        try:
            frames = read_frames(item.path)
            if _has_flow(folder, len(frames) - 1):
                continue
            if len(frames) < 2:
                raise VideoError(item.path, "has one frame: no motion to compute flow from")
            images = flow_images(frames)
        except VideoError as err:
            if on_error == "raise":
                raise
            skipped.append(Problem(str(item.path), str(err)))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for t, image in enumerate(images, start=1):
            # JPEG like the released LRCN flow frames; BGR order for OpenCV.
            cv2.imwrite(
                str(folder / f"flow_{t:05d}.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
        if progress is not None:
            progress(done, len(items))
    return skipped


def write_flow_of_config(
    data: VideoDataConfig,
    out: str | Path,
    log: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The flow data set of every video a config's ``data`` section names, under ``out``.

    Returns ``flow_root``, the mirrored root to put in a flow config's ``data.root``.
    """
    from lrcn.data.video_split import read_video_split, split_dirs

    split = read_video_split(data)
    root = Path(data.root)
    flow_root = Path(out) / root.name
    items = split.train + split.val + split.test
    log(f"computing optical flow of {len(items)} videos into {flow_root}")
    skipped = write_flow_dataset(
        items, root, flow_root, split_dirs(data), data.on_error, progress=progress
    )
    return {
        "flow_root": str(flow_root),
        "videos": len(items),
        "skipped": [p.problem for p in [*split.skipped, *skipped]],
    }
