"""read_frames: exact frames from files and frame folders; named errors for broken inputs."""

import numpy as np
import pytest
from PIL import Image

from lrcn.data.video_io import VideoError, probe_video, read_frames, read_image, write_video


def _numbered_frames(count: int, size: int = 32) -> np.ndarray:
    """Frames that carry their index in binary (8 black/white column blocks, bit 0 on the left)
    over a noisy background, so lossy coding cannot blur one index into the next."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (count, size, size, 3)).astype(np.uint8)
    width = size // 8
    for t in range(count):
        for bit in range(8):
            if t >> bit & 1:
                frames[t, : size // 2, bit * width : (bit + 1) * width] = 255
    return frames


def _index_of(frame: np.ndarray) -> int:
    size = frame.shape[0]
    width = size // 8
    blocks = [frame[: size // 2, b * width : (b + 1) * width].mean() > 128 for b in range(8)]
    return sum(1 << b for b, on in enumerate(blocks) if on)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "long.avi"
    write_video(path, _numbered_frames(120), gop_size=12)
    return path


def test_full_decode_returns_every_frame_in_order(long_video):
    frames = read_frames(long_video)
    assert frames.shape == (120, 32, 32, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == list(range(120))
    assert probe_video(long_video).num_frames == 120


def test_seeking_returns_the_same_frames_as_a_full_decode(long_video):
    full = read_frames(long_video)
    indices = [100, 60, 119, 61, 100, 3]  # any order, repeats, far enough in to seek
    part = read_frames(long_video, indices)
    for k, i in enumerate(indices):
        np.testing.assert_array_equal(part[k], full[i])


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".mp4", "libx264"), (".mkv", "mpeg4"), (".webm", "libvpx-vp9")]
)
def test_other_containers(tmp_path, suffix, codec):
    path = tmp_path / f"v{suffix}"
    write_video(path, _numbered_frames(80), codec=codec)
    full = read_frames(path)
    np.testing.assert_array_equal(read_frames(path, [70, 50]), full[[70, 50]])


def test_frame_folder_backend(tmp_path):
    folder = tmp_path / "v_frames"
    folder.mkdir()
    frames = _numbered_frames(10)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t + 1:05d}.png")
    np.testing.assert_array_equal(read_frames(folder, [9, 0]), frames[[9, 0]])
    assert probe_video(folder).num_frames == 10


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match=r"missing\.avi: file not found"):
        read_frames(tmp_path / "missing.avi", [0])


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.avi"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"corrupt\.avi"):
        read_frames(path, [0])


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4"):
        probe_video(path)


def test_truncated_file_names_the_last_decodable_frame(tmp_path, long_video):
    data = long_video.read_bytes()
    path = tmp_path / "truncated.avi"
    path.write_bytes(data[: len(data) // 3])
    frames = read_frames(path, [0, 5])  # the start still decodes
    assert frames.shape[0] == 2
    with pytest.raises(
        VideoError, match=r"truncated.avi: frame 110 asked for, but only frames up to \d+"
    ):
        read_frames(path, [110])


def test_unreadable_frame_image(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(_numbered_frames(1)[0]).save(folder / "00001.jpg")
    (folder / "00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match=r"00002.jpg: unreadable image"):
        read_frames(folder, [0, 1])


def test_index_past_the_end(long_video):
    with pytest.raises(VideoError, match="frame 500 asked for, but the video has 120 frames"):
        read_frames(long_video, [500])
    with pytest.raises(VideoError, match="frame 120 asked for, but the video has 120 frames"):
        read_frames(long_video, [0, 120])


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_a_whole_video_read_short_of_its_declared_frames_is_truncated(tmp_path, suffix):
    """AVI declares a frame count, MKV a duration: either way a file cut to 40% is refused
    when read whole (the feature cache's read), not returned as its first frames."""
    path = tmp_path / f"cut{suffix}"
    frames = np.random.default_rng(0).integers(0, 255, (24, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames)
    assert read_frames(path).shape[0] == 24
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5])
    with pytest.raises(VideoError, match=r"truncated: \d+ frames decoded of the 24 its container"):
        read_frames(path)


def test_a_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    """Pillow's own conversion clips I;16 at 255, turning most of the image white."""
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(values).save(path)
    notes: list[str] = []
    rgb = read_image(path, notes)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    expected = np.rint(values / 257.0)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1
    assert notes == [f"{path}: converted I;16 grayscale to 8-bit RGB (scaled 0..65535 to 0..255)"]
