"""Reading frames from a video file or a folder of frame images: the only place that uses PyAV.

``read_frames(path, indices)`` returns ``uint8 (T, H, W, 3)`` RGB for the frame numbers asked
for, decoding as little as it can. A file is decoded from the keyframe before the first wanted
frame (a seek, when that frame is far enough in) up to the last wanted frame, and stops there.
Callers that want many clips of one video ask for all their indices in one call: decoding once
and slicing beats seeking per clip (1.4-9× measured, see PERF-NOTES).

A path that is a directory is a video stored as one image per frame (``*.jpg``, ``*.jpeg``,
``*.png``, in name order), the layout of users who extract frames beforehand.

Every failure raises :class:`VideoError`, which names the file and says what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lrcn.errors import LrcnError

__all__ = [
    "FRAME_IMAGE_SUFFIXES",
    "VideoError",
    "VideoInfo",
    "iter_frames",
    "probe_video",
    "read_every",
    "read_frames",
    "read_image",
    "write_video",
]

FRAME_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Seek only when the first wanted frame is at least this far in; below it, decoding from the
# start costs less than the seek and the decode from the keyframe before it.
_SEEK_MIN_FRAMES = 48


class VideoError(LrcnError):
    """A video (or frame image) that cannot be read; the message names the file."""


class VideoInfo(NamedTuple):
    """What a reader needs to know before sampling clips."""

    num_frames: int
    fps: float
    height: int
    width: int


# --------------------------------------------------------------------------------------------
# Folders of frame images
# --------------------------------------------------------------------------------------------


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_IMAGE_SUFFIXES)
    if not files:
        raise VideoError(folder, f"no frame images ({', '.join(FRAME_IMAGE_SUFFIXES)}) in folder")
    return files


def read_image(path: Path, notes: list[str] | None = None) -> np.ndarray:
    """An image file as ``uint8 (H, W, 3)`` RGB; :class:`VideoError` names an unreadable one.

    Grayscale, CMYK, RGBA, palette and other modes are converted to RGB; 16-bit and 32-bit
    grayscale (``I;16``, ``I``, ``F``) are scaled to 8 bits, never clipped (Pillow's own
    conversion would turn most of a 16-bit image white). With ``notes`` given, each conversion
    is recorded there (``"<path>: converted CMYK to RGB"``) for the report.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in _WIDE_MODES:
                return _wide_to_rgb(image, path, notes)
            if image.mode != "RGB" and notes is not None:
                notes.append(f"{path}: converted {image.mode} to RGB")
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise VideoError(path, f"unreadable image ({err})") from None
    except Image.DecompressionBombError as err:  # a header declaring billions of pixels
        raise VideoError(path, f"refused: {err}") from None


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _wide_to_rgb(image, path: Path, notes: list[str] | None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 16/32-bit integer or float grayscale image scaled to ``uint8 (H, W, 3)``.

    16-bit modes map 0..65535 to 0..255. ``I`` and ``F`` carry no bit depth, so their values
    decide: within 0..255 they are kept, within 0..65535 scaled as 16 bits, floats within
    0..1 scaled by 255, anything else stretched from its minimum to its maximum.
    """
    values = np.asarray(image, dtype=np.float64)  # (H, W)
    if not np.isfinite(values).all():
        raise VideoError(path, f"{image.mode} image holds NaN or infinite values")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high > 255
                                         and high <= 65535):  # fmt: skip
        scale, how = 255 / 65535, "scaled 0..65535 to 0..255"
        values = values * scale
    elif image.mode == "F" and low >= 0 and high <= 1:
        values, how = values * 255, "scaled 0..1 to 0..255"
    elif low >= 0 and high <= 255:
        how = "values kept"
    else:
        span = high - low or 1.0
        values, how = (values - low) * (255 / span), f"stretched {low:g}..{high:g} to 0..255"
    if notes is not None:
        notes.append(f"{path}: converted {image.mode} grayscale to 8-bit RGB ({how})")
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


# --------------------------------------------------------------------------------------------
# Video files
# --------------------------------------------------------------------------------------------


def _open(path: Path):  # type: ignore[no-untyped-def]
    import av

    if not path.exists():
        raise VideoError(path, "file not found")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)  # without FFmpeg's "[Errno -N]"
        raise VideoError(path, f"not a readable video ({reason})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "has no video stream")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of a video file or frame folder.

    The count comes from the container when it records one, else from counting packets
    (no decoding). It can differ from the decodable count for damaged files; ``read_frames``
    then reports the real one.
    """
    path = Path(path)
    if path.is_dir():
        files = _frame_files(path)
        first = read_image(files[0])
        return VideoInfo(len(files), 0.0, first.shape[0], first.shape[1])
    import av

    with _open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        count = stream.frames
        if count <= 0:
            try:
                count = sum(1 for packet in container.demux(stream) if packet.size)
            except av.error.FFmpegError as err:
                raise VideoError(path, f"cannot read packets ({err})") from None
        if count <= 0:
            raise VideoError(path, "has zero frames")
        return VideoInfo(count, fps, stream.height, stream.width)


def read_frames(path: str | Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames ``indices`` (all frames if None) of a video file or frame folder.

    Args:
        path: a video file PyAV can open, or a folder of frame images.
        indices: frame numbers from 0, in any order, repeats allowed.

    Returns:
        ``uint8 (len(indices), H, W, 3)`` RGB, in the order of ``indices``.

    Raises:
        VideoError: missing, unreadable or truncated file, or an index past the last frame.
    """
    path = Path(path)
    if indices is not None:
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("read_frames: indices is empty")
        if min(indices) < 0:
            raise ValueError(f"read_frames: frame indices must be >= 0, got {min(indices)}")
    if path.is_dir():
        files = _frame_files(path)
        wanted = range(len(files)) if indices is None else indices
        if indices is not None and max(indices) >= len(files):
            raise VideoError(
                path, f"frame {max(indices)} asked for, but the folder has {len(files)} frames"
            )
        cache: dict[int, np.ndarray] = {}
        for i in wanted:
            if i not in cache:
                cache[i] = read_image(files[i])
        return np.stack([cache[i] for i in wanted])
    return _decode(path, indices)


def _declared_frames(container, stream) -> int | None:  # type: ignore[no-untyped-def]
    """How many frames the container says the video has: its frame count (AVI, MP4), else
    its duration times the frame rate (MKV, WebM); None when it says neither."""
    if stream.frames > 0:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000  # microseconds (AV_TIME_BASE)
    else:
        return None
    return round(seconds * float(rate)) or None


def _shortfall_tolerance(declared: int) -> int:
    """Frames a whole video may decode short of its declared count: codecs with delay drop a
    frame or two at the end, XviD AVIs count not-coded frames, durations round; a truncated
    file falls far shorter."""
    return max(2, round(0.03 * declared))


def _decode(path: Path, indices: list[int] | None, allow_seek: bool = True) -> np.ndarray:
    import av

    wanted = None if indices is None else set(indices)
    last = None if indices is None else max(indices)
    frames: dict[int, np.ndarray] = {}
    decoded = 0  # frames decoded, wanted or not
    last_seen = -1  # the furthest frame position decoded
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        time_base = stream.time_base
        start_pts = stream.start_time or 0
        seekable = bool(rate and time_base) and indices is not None
        first = 0 if indices is None else min(indices)
        if last is not None and stream.frames > 0 and last >= stream.frames:
            raise VideoError(
                path, f"frame {last} asked for, but the video has {stream.frames} frames"
            )
        declared = _declared_frames(container, stream) if indices is None else None
        # One reformatter with threads=1: to_ndarray() would start swscale threads per frame.
        reformatter = av.video.reformatter.VideoReformatter()
        try:
            if allow_seek and seekable and first >= _SEEK_MIN_FRAMES:
                assert rate is not None and time_base is not None
                target = start_pts + int(Fraction(first) / Fraction(rate) / Fraction(time_base))
                container.seek(target, stream=stream, backward=True, any_frame=False)
            position = None
            for frame in container.decode(stream):
                if frame.pts is not None and seekable:
                    assert rate is not None and time_base is not None
                    seconds = Fraction(frame.pts - start_pts) * Fraction(time_base)
                    position = round(seconds * Fraction(rate))
                else:
                    position = decoded if position is None else position + 1
                decoded += 1
                last_seen = max(last_seen, position)
                if wanted is None or position in wanted:
                    rgb = reformatter.reformat(frame, format="rgb24", threads=1)
                    frames[position] = rgb.to_ndarray()
                if last is not None and position >= last:
                    break
        except av.error.FFmpegError as err:
            if decoded == 0 and not (allow_seek and first >= _SEEK_MIN_FRAMES):
                raise VideoError(path, f"decoding failed ({err})") from None
            # A damaged tail: keep what decoded, and report below if a wanted frame is missing.
    if decoded == 0:
        if allow_seek and indices is not None and first >= _SEEK_MIN_FRAMES:
            # Nothing after the seek: find out from the start how far the file really decodes.
            return _decode(path, indices, allow_seek=False)
        raise VideoError(path, "has zero decodable frames")
    if indices is None:
        if declared is not None and len(frames) < declared - _shortfall_tolerance(declared):
            raise VideoError(
                path,
                f"truncated: {len(frames)} frames decoded of the {declared} its container declares",
            )
        return np.stack([frames[i] for i in sorted(frames)])
    missing = sorted(set(indices) - frames.keys())
    if missing:
        raise VideoError(
            path,
            f"frame {missing[0]} asked for, but only frames up to {last_seen} could be "
            "decoded (truncated or shorter than its header says)",
        )
    return np.stack([frames[i] for i in indices])


# --------------------------------------------------------------------------------------------
# Streaming: every k-th frame, front to back, one at a time
# --------------------------------------------------------------------------------------------


def iter_frames(path: str | Path, every: int = 1) -> Iterator[np.ndarray]:
    """Frames 0, ``every``, 2·``every``, ... of a video file or frame folder, one ``uint8
    (H, W, 3)`` RGB frame at a time, decoded once from the start.

    ``read_frames`` returns its frames all at once; a caller of this holds only the frames it
    still needs, so memory stays flat however long the video is (``lrcn predict`` on a
    10-minute video). A codec cannot skip frames, so every frame is decoded, but only the kept
    ones are converted to RGB (a conversion adds about a third to a frame's decode, PERF-NOTES).
    Frames are numbered in decoding order, as ``read_frames(path)`` and the feature cache
    number them.

    Raises:
        VideoError: missing or unreadable file, no decodable frame, or (once the caller reads
            to the end) a file that decodes short of its declared frame count by more than
            codecs drop, as ``read_frames(path)`` does. A caller that stops early checks nothing.
        ValueError: ``every`` < 1.
    """
    if every < 1:
        raise ValueError(f"iter_frames: every must be >= 1, got {every}")
    path = Path(path)
    if path.is_dir():
        return (read_image(file) for file in _frame_files(path)[::every])
    return _file_frames(path, every)


def _file_frames(path: Path, every: int) -> Iterator[np.ndarray]:
    import av

    decoded = 0  # frames decoded, kept or not
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = _declared_frames(container, stream)
        # One reformatter with threads=1, as in _decode: to_ndarray() would start swscale
        # threads per frame.
        reformatter = av.video.reformatter.VideoReformatter()
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as err:
                if decoded == 0:
                    raise VideoError(path, f"decoding failed ({err})") from None
                break  # a damaged tail: what decoded stands; the count check below judges it
            if decoded % every == 0:
                yield reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
            decoded += 1
    if decoded == 0:
        raise VideoError(path, "has zero decodable frames")
    if declared is not None and decoded < declared - _shortfall_tolerance(declared):
        raise VideoError(
            path, f"truncated: {decoded} frames decoded of the {declared} its container declares"
        )


def read_every(path: str | Path, every: int) -> np.ndarray:
    """Frames 0, ``every``, 2·``every``, ... of a whole video as ``uint8 (ceil(T / every), H,
    W, 3)``: the feature cache's loader under ``data.frame_every``, which never holds the
    frames it drops (see :func:`iter_frames` for errors)."""
    frames = list(iter_frames(path, every))
    return np.stack(frames)  # (ceil(T / every), H, W, 3)


def write_video(
    path: str | Path, frames: np.ndarray, fps: int = 25, codec: str = "mpeg4", gop_size: int = 12
) -> None:
    """Encode ``uint8 (T, H, W, 3)`` RGB frames into ``path`` (AVI/MP4/MKV by suffix).

    Used to write the built-in data sets in the real formats (UCF-101 ships XviD/mpeg4 AVI).
    H and W must be even for yuv420p.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_video expects uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop_size
        stream.codec_context.bit_rate = 2_000_000
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
