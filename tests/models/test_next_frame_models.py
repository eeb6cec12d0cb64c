"""The ConvLSTM encoder-forecaster: shapes, patch reshaping, teacher masks, and causality (a
prediction of frame t never depends on a frame at or after t, in training and at inference)."""

from __future__ import annotations

import pytest
import torch

from lrcn.models import create_model
from lrcn.models.next_frame import ConvLSTMForecaster, FramePredictor

CONTEXT, HORIZON = 4, 5


MODELS = ("convlstm_encoder_forecaster", "convlstm")


def _model(
    patch: int = 2,
    filters: tuple[int, ...] = (6, 5),
    channels: int = 1,
    name: str = "convlstm_encoder_forecaster",
) -> FramePredictor:
    torch.manual_seed(0)
    model = create_model(
        name,
        channels=channels,
        frame_size=8,
        filters=list(filters),
        kernel_size=3,
        patch_size=patch,
    )
    assert isinstance(model, FramePredictor)
    return model.eval()


def _video(batch: int = 3, channels: int = 1) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(batch, CONTEXT + HORIZON, channels, 8, 8)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("patch", [1, 2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(patch: int, channels: int, name: str) -> None:
    model = _model(patch, channels=channels, name=name)
    with torch.no_grad():
        out = model(_video(channels=channels)[:, :CONTEXT], HORIZON)
    assert out.frames.shape == (3, HORIZON, channels, 8, 8)
    assert out.logits.shape == out.frames.shape
    assert float(out.frames.min()) >= 0 and float(out.frames.max()) <= 1
    assert torch.equal(out.frames, torch.sigmoid(out.logits))


def test_patch_reshaping_is_lossless_and_folds_pixels_into_channels() -> None:
    model = _model(patch=4, channels=3)
    frames = torch.rand(2, 3, 8, 8)
    grid = model.patch(frames)
    assert grid.shape == (2, 3 * 16, 2, 2)
    assert torch.equal(model.unpatch(grid), frames)
    # each 4x4 block of one channel lands in one grid cell
    assert torch.equal(
        grid[0, :16, 0, 0].sort().values, frames[0, 0, :4, :4].flatten().sort().values
    )


def test_patch_size_must_divide_the_frame() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        ConvLSTMForecaster(1, 10, [4], 3, 4)


def _masks(batch: int) -> list[torch.Tensor | None]:
    torch.manual_seed(2)
    return [
        None,  # inference: pure autoregression
        torch.ones(batch, HORIZON - 1, dtype=torch.bool),  # teacher forcing
        torch.zeros(batch, HORIZON - 1, dtype=torch.bool),
        torch.rand(batch, HORIZON - 1) < 0.5,  # scheduled sampling
    ]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mask_index", range(4))
@pytest.mark.parametrize("train_mode", [False, True])
def test_prediction_of_frame_t_ignores_frames_at_and_after_t(
    mask_index: int, train_mode: bool, name: str
) -> None:
    """For every horizon step k (frame t = CONTEXT + k): change every frame from t on; the
    prediction of frame t stays bit-identical. Checked with the model in train mode (the
    training path, with teacher masks) and in eval mode."""
    model = _model(name=name).train(train_mode)
    video = _video()
    teacher = _masks(len(video))[mask_index]
    context, future = video[:, :CONTEXT], video[:, CONTEXT:]
    with torch.no_grad():
        first = model(context, HORIZON, future, teacher)
        base = first.frames
        for k in range(HORIZON):
            changed = future.clone()
            changed[:, k:] = torch.rand_like(changed[:, k:])
            output = model(context, HORIZON, changed, teacher)
            again = output.frames
            assert torch.equal(again[:, : k + 1], base[:, : k + 1]), f"step {k} saw the future"
            if first.context_logits is not None:  # the one-stack model's context predictions
                assert output.context_logits is not None
                assert torch.equal(output.context_logits, first.context_logits)
            if teacher is not None and bool(teacher[:, k:].any()) and k + 1 < HORIZON:
                # the check can fail: where the truth is fed, later steps do change
                assert not torch.equal(again[:, k + 1 :], base[:, k + 1 :])


@pytest.mark.parametrize("name", MODELS)
def test_the_last_context_frame_reaches_every_step(name: str) -> None:
    """The last context frame matters to every step (the check above is not vacuous)."""
    model = _model(name=name)
    video = _video()
    changed = video[:, :CONTEXT].clone()
    changed[:, -1] = torch.rand_like(changed[:, -1])
    with torch.no_grad():
        a = model(video[:, :CONTEXT], HORIZON).frames
        b = model(changed, HORIZON).frames
    assert all(not torch.equal(a[:, k], b[:, k]) for k in range(HORIZON))


def test_teacher_forcing_feeds_the_true_previous_frame() -> None:
    """With every mask true, step k + 1 equals one step from the true frame k."""
    model = _model()
    video = _video()
    context, future = video[:, :CONTEXT], video[:, CONTEXT:]
    teacher = torch.ones(len(video), HORIZON - 1, dtype=torch.bool)
    with torch.no_grad():
        forced = model(context, HORIZON, future, teacher).frames
        states = model.encode(context)
        frame = context[:, -1]
        for k in range(HORIZON):
            logits, states = model.step(frame, states)
            torch.testing.assert_close(torch.sigmoid(logits), forced[:, k])
            frame = future[:, k]


def test_a_teacher_mask_needs_the_future() -> None:
    model = _model()
    with pytest.raises(ValueError, match="future"):
        model(_video()[:, :CONTEXT], HORIZON, None, torch.ones(3, HORIZON - 1, dtype=torch.bool))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = _model(name=name).train()
    video = _video()
    out = model(video[:, :CONTEXT], HORIZON, video[:, CONTEXT:], _masks(3)[3])
    (out.frames - video[:, CONTEXT:]).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_the_one_stack_model_predicts_each_context_frame_from_those_before() -> None:
    """Its context logit t (frame t + 2) changes with frame t + 1, not with frame t + 2."""
    model = _model(name="convlstm")
    video = _video()
    with torch.no_grad():
        base = model(video[:, :CONTEXT], HORIZON).context_logits
        assert base is not None and base.shape == (3, CONTEXT - 1, 1, 8, 8)
        for t in range(CONTEXT - 1):
            changed = video[:, :CONTEXT].clone()
            changed[:, t + 1 :] = torch.rand_like(changed[:, t + 1 :])
            again = model(changed, HORIZON).context_logits
            assert again is not None
            assert torch.equal(again[:, : t + 1], base[:, : t + 1])
