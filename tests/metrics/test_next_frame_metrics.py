"""Next-frame metrics: OpenSTL's conventions on hand-made frames, torchmetrics per frame, and
the two baselines."""

import pytest
import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from lrcn.metrics.next_frame import copy_last_frame, frame_scores, linear_extrapolation


def test_mse_and_mae_are_summed_over_pixels_and_averaged_over_sequences():
    target = torch.zeros(2, 3, 1, 16, 16)
    pred = torch.zeros(2, 3, 1, 16, 16)
    pred[0, 0, 0, 0, :2] = 0.5  # sequence 0, step 1: two pixels off by 0.5
    pred[1, 2] = 0.25  # sequence 1, step 3: all 256 pixels off by 0.25
    scores = frame_scores(pred, target)
    # step 1: (2 * 0.25 + 0) / 2 sequences; step 3: (0 + 256 * 0.0625) / 2
    assert scores.per_step["mse"] == pytest.approx([0.25, 0.0, 8.0])
    assert scores.per_step["mae"] == pytest.approx([0.5, 0.0, 32.0])
    assert scores.mean["mse"] == pytest.approx(8.25 / 3)
    assert scores.sequences == 2


def test_ssim_and_psnr_equal_torchmetrics_frame_by_frame():
    torch.manual_seed(0)
    target = torch.rand(3, 4, 1, 32, 32)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    scores = frame_scores(pred, target)
    for k in range(4):
        ssim = [
            float(structural_similarity_index_measure(pred[i, k : k + 1], target[i, k : k + 1],
                                                      data_range=1.0))
            for i in range(3)
        ]  # fmt: skip
        psnr = [
            float(peak_signal_noise_ratio(pred[i, k], target[i, k], data_range=1.0))
            for i in range(3)
        ]
        assert scores.per_step["ssim"][k] == pytest.approx(sum(ssim) / 3, abs=1e-5)
        assert scores.per_step["psnr"][k] == pytest.approx(sum(psnr) / 3, abs=1e-4)
    perfect = frame_scores(target, target)
    assert perfect.mean["mse"] == 0 and perfect.mean["ssim"] == pytest.approx(1.0, abs=1e-5)


def test_baselines():
    ramp = torch.linspace(0, 0.4, 5).view(1, 5, 1, 1, 1).expand(2, 5, 1, 3, 3)  # +0.1 a frame
    copied = copy_last_frame(ramp, 3)
    assert copied.shape == (2, 3, 1, 3, 3) and torch.all(copied == ramp[:, -1:])
    extrapolated = linear_extrapolation(ramp, 8)
    expected = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0])  # clipped at 1
    torch.testing.assert_close(extrapolated[0, :, 0, 0, 0], expected)
    with pytest.raises(ValueError, match="T>=2"):
        linear_extrapolation(ramp[:, :1], 2)
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        frame_scores(ramp, ramp[:, :2])


def test_accumulated_batches_equal_one_call_and_exact_frames_cap_psnr():
    from lrcn.metrics.next_frame import PSNR_CAP, ScoreAccumulator

    torch.manual_seed(1)
    target = torch.rand(5, 3, 1, 16, 16)
    pred = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    whole = frame_scores(pred, target)
    parts = ScoreAccumulator()
    parts.add(pred[:2], target[:2])
    parts.add(pred[2:], target[2:])
    split = parts.result()
    assert split.sequences == 5
    for name in whole.per_step:
        assert split.per_step[name] == pytest.approx(whole.per_step[name], rel=1e-6)
    exact = frame_scores(target, target)
    assert exact.mean["psnr"] == PSNR_CAP
