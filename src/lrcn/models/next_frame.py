"""Next-frame prediction: the ConvLSTM encoder-forecaster of Shi et al. (NeurIPS 2015,
"Convolutional LSTM Network: A Machine Learning Approach for Precipitation Nowcasting").

An encoder of stacked :class:`~lrcn.nn.ConvLSTM2d` layers reads the context frames; a forecaster
of as many ConvLSTM cells starts from the encoder's last states and unrolls the horizon, one
frame per step; a 1x1 convolution over all forecaster layers' hidden states (the paper's
"concatenate the states of the forecasting network") gives the next frame's logits.

The forecaster reads the previous frame at each step: the last context frame first, then either
its own prediction (autoregression, always at evaluation and prediction) or, during training,
the true frame where the caller's ``teacher`` mask says so (scheduled sampling, Bengio et al.
2015, as PredRNN and OpenSTL train ConvLSTM). The prediction of horizon step k therefore depends
on the context and on the true future frames before k only where ``teacher`` lets it, never on
frame k or later (``tests/models/test_next_frame.py`` perturbs them and checks bit-equality).

Patch reshaping (``patch_size`` p, as OpenSTL does it) folds each p x p block of pixels into
channels before the recurrence, e.g. a 1 x 64 x 64 frame into 16 x 16 x 16, so every
convolution runs on a 16x smaller grid: the model becomes cheap enough for a CPU, and a 3x3
kernel sees 12x12 pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, field_validator
from torch import Tensor, nn

from lrcn.config import StrictConfig
from lrcn.models._registry import ModelFamily, register_model
from lrcn.nn.conv_lstm import ConvLSTM2d, ConvLSTMCell

__all__ = [
    "NEXT_FRAME",
    "ConvLSTMForecaster",
    "ConvLSTMPredictor",
    "ForecasterConfig",
    "FramePredictor",
    "NextFrameExtras",
    "NextFrameOutput",
    "PredictorConfig",
    "convlstm",
    "convlstm_encoder_forecaster",
    "unroll",
]


class NextFrameExtras(BaseModel):
    """What a next-frame bundle carries beside the weights: the frames it was trained on."""

    channels: Literal[1, 3]  # grayscale or RGB
    size: int = Field(ge=4)  # frames are size x size
    context: int = Field(ge=1)  # frames in
    horizon: int = Field(ge=1)  # frames out, as trained (prediction may unroll further)


NEXT_FRAME = ModelFamily(
    "next_frame", NextFrameExtras, lambda e: {"channels": e.channels, "frame_size": e.size}
)


class ForecasterConfig(StrictConfig):
    """``model:`` of ``task: next_frame``. ``loss``, ``feed`` and ``sampling_epochs`` configure
    training, not the network."""

    name: Literal["convlstm_encoder_forecaster"]
    filters: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)  # per layer
    kernel_size: int = Field(3, ge=1)  # odd, "same" padding
    patch_size: int = Field(4, ge=1)  # 1: no patch reshaping
    loss: Literal["mse", "l1", "bce"] = "mse"
    # What the forecaster reads at training time after its first step: the true previous frame
    # with a probability that falls from 1 to 0 over sampling_epochs (scheduled), always its
    # own prediction (autoregressive), or always the truth (teacher).
    feed: Literal["scheduled", "autoregressive", "teacher"] = "scheduled"
    sampling_epochs: int | None = Field(None, ge=1)  # scheduled: default half of train.epochs

    @field_validator("filters")
    @classmethod
    def _positive(cls, filters: list[int]) -> list[int]:
        if min(filters) < 1:
            raise ValueError("every layer needs at least 1 filter")
        return filters

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError("must be odd, so that 'same' padding is symmetric")
        return kernel


class NextFrameOutput(NamedTuple):
    frames: Tensor  # (B, K, C, H, W) predicted frames in [0, 1]
    logits: Tensor  # (B, K, C, H, W) before the sigmoid (for the BCE loss)
    # (B, Tc - 1, C, H, W): logits of context frames 2..Tc, each from the frames before it
    # (models that predict while they read; None for the encoder-forecaster)
    context_logits: Tensor | None = None


State = list[tuple[Tensor, Tensor]]  # per layer (h, c), each (B, F_l, H/p, W/p)


class FramePredictor(nn.Module):
    """What both models share: patch reshaping, and the horizon unrolled one frame at a time
    from the previous frame (true or predicted). Subclasses give :meth:`begin` (read the
    context), :meth:`step` (one frame on) and ``output``, the 1x1 convolution to a frame."""

    output: nn.Conv2d

    def __init__(self, channels: int, frame_size: int, patch_size: int) -> None:
        super().__init__()
        if frame_size % patch_size:
            raise ValueError(
                f"patch_size {patch_size} does not divide the {frame_size}-pixel frame side"
            )
        self.channels, self.frame_size, self.patch_size = channels, frame_size, patch_size
        self.patched = channels * patch_size**2

    def start_at_mean(self, mean: float) -> None:
        """Set the output bias so the untrained model predicts frames of the data's mean pixel
        value, as a classifier's bias starts at the log prior. On mostly dark frames (Moving
        MNIST: mean 0.05) a start at 0.5 grey costs the first minutes of training unlearning
        it (measured: 10x the MSE after the same 20 epochs on moving squares)."""
        p = min(max(mean, 1e-3), 1 - 1e-3)
        assert self.output.bias is not None
        with torch.no_grad():
            self.output.bias.fill_(math.log(p / (1 - p)))

    def patch(self, frames: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C*p*p, H/p, W/p)``."""
        return F.pixel_unshuffle(frames, self.patch_size) if self.patch_size > 1 else frames

    def unpatch(self, grid: Tensor) -> Tensor:
        """``(N, C*p*p, H/p, W/p)`` -> ``(N, C, H, W)``."""
        return F.pixel_shuffle(grid, self.patch_size) if self.patch_size > 1 else grid

    def cells(self, filters: list[int], kernel_size: int) -> nn.ModuleList:
        """Stacked ConvLSTM cells ("same" padding) over the patched frame's grid."""
        widths = [self.patched, *filters[:-1]]
        return nn.ModuleList(
            ConvLSTMCell(w, f, kernel_size, padding="same")
            for w, f in zip(widths, filters, strict=True)
        )

    def run_stack(self, cells: nn.ModuleList, frame: Tensor, states: State) -> State:
        """One step of stacked ``cells`` from ``frame (B, C, H, W)``: each layer reads the one
        below (the first, the patched frame); the new states."""
        x = self.patch(frame)
        new_states = []
        for cell, (h, c) in zip(cells, states, strict=True):
            h, c = cell(x, (h, c))
            new_states.append((h, c))
            x = h
        return new_states

    def begin(self, context: Tensor) -> tuple[State, Tensor | None]:
        """Read ``context (B, Tc, C, H, W)`` but its last frame's step: the states, and the
        logits of context frames 2..Tc when the model predicts them."""
        raise NotImplementedError

    def step(self, frame: Tensor, states: State) -> tuple[Tensor, State]:
        """From the previous frame ``(B, C, H, W)``: the next frame's logits ``(B, C, H, W)``
        and the new states."""
        raise NotImplementedError

    def forward(
        self,
        context: Tensor,
        horizon: int,
        future: Tensor | None = None,
        teacher: Tensor | None = None,
    ) -> NextFrameOutput:
        """Predict ``horizon`` frames after ``context (B, Tc, C, H, W)``.

        Args:
            future: the true frames ``(B, >= horizon - 1, C, H, W)``, read only where
                ``teacher`` is true.
            teacher: bool ``(B, horizon - 1)``: step k + 1 reads ``future[:, k]`` instead of
                the prediction of step k. None: pure autoregression.
        """
        if context.dim() != 5 or context.shape[2] != self.channels:
            raise ValueError(
                f"expected context (B, T, {self.channels}, H, W), got {tuple(context.shape)}"
            )
        if teacher is not None and future is None:
            raise ValueError("a teacher mask needs the future frames it selects from")
        states, context_logits = self.begin(context)
        frames, logits = unroll(self.step, states, context[:, -1], horizon, future, teacher)
        return NextFrameOutput(frames, logits, context_logits)


def unroll(
    step: Callable[[Tensor, State], tuple[Tensor, State]],
    states: State,
    frame: Tensor,
    horizon: int,
    future: Tensor | None = None,
    teacher: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``horizon`` steps from the last context ``frame (B, C, H, W)``: the predicted frames
    and their logits, each ``(B, horizon, C, H, W)``. Each step reads the previous prediction,
    or ``future[:, k]`` where ``teacher[:, k]`` is true. Only ``step`` is called, so an
    exported model's ``begin`` and ``step`` graphs forecast any horizon."""
    logits, frames = [], []
    for k in range(horizon):
        logit, states = step(frame, states)
        prediction = torch.sigmoid(logit)
        logits.append(logit)
        frames.append(prediction)
        if k + 1 < horizon:
            frame = prediction
            if teacher is not None and future is not None:
                keep = teacher[:, k].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
                frame = torch.where(keep, future[:, k], prediction)
    return torch.stack(frames, 1), torch.stack(logits, 1)


class ConvLSTMForecaster(FramePredictor):
    """Shi et al.'s encoder-forecaster; see the module doc."""

    def __init__(
        self,
        channels: int,
        frame_size: int,
        filters: list[int],
        kernel_size: int = 3,
        patch_size: int = 4,
    ) -> None:
        super().__init__(channels, frame_size, patch_size)
        widths = [self.patched, *filters[:-1]]
        self.encoder = nn.ModuleList(
            ConvLSTM2d(w, f, kernel_size, padding="same", return_sequences=True, return_state=True)
            for w, f in zip(widths, filters, strict=True)
        )
        self.forecaster = self.cells(filters, kernel_size)
        self.output = nn.Conv2d(sum(filters), self.patched, kernel_size=1)

    def encode(self, context: Tensor) -> State:
        """The encoder's last states after ``context (B, Tc, C, H, W)``."""
        steps = context.shape[1]
        x = self.patch(context.flatten(0, 1))
        x = x.reshape(-1, steps, *x.shape[1:])  # (B, Tc, Cp, h, w); -1 keeps an export's B free
        states = []
        for layer in self.encoder:
            x, h, c = layer(x)  # x (B, Tc, F_l, h, w)
            states.append((h, c))
        return states

    def begin(self, context: Tensor) -> tuple[State, Tensor | None]:
        return self.encode(context), None

    def step(self, frame: Tensor, states: State) -> tuple[Tensor, State]:
        states = self.run_stack(self.forecaster, frame, states)
        hidden = torch.cat([h for h, _ in states], dim=1)  # (B, sum F, h, w)
        return self.unpatch(self.output(hidden)), states


class ConvLSTMPredictor(FramePredictor):
    """One stack of ConvLSTM cells that reads every frame and predicts the next one, through
    the context and on through the horizon: the ConvLSTM of PredRNN's and OpenSTL's
    benchmarks (the Moving MNIST reference numbers are this model's). Every step is supervised,
    the context steps too (``context_logits``); the output is a 1x1 convolution of the top
    layer's hidden state."""

    def __init__(
        self,
        channels: int,
        frame_size: int,
        filters: list[int],
        kernel_size: int = 3,
        patch_size: int = 4,
    ) -> None:
        super().__init__(channels, frame_size, patch_size)
        self.stack = self.cells(filters, kernel_size)
        self.output = nn.Conv2d(filters[-1], self.patched, kernel_size=1)

    def begin(self, context: Tensor) -> tuple[State, Tensor | None]:
        grid = self.patch(context[:, 0])  # (B, Cp, h, w); "same" padding keeps h, w per layer
        states: State = []
        for cell in self.stack:
            assert isinstance(cell, ConvLSTMCell)
            states.append(cell.initial_state(grid))
        logits = []
        for t in range(context.shape[1] - 1):
            logit, states = self.step(context[:, t], states)
            logits.append(logit)
        return states, torch.stack(logits, 1) if logits else None

    def step(self, frame: Tensor, states: State) -> tuple[Tensor, State]:
        states = self.run_stack(self.stack, frame, states)
        return self.unpatch(self.output(states[-1][0])), states


@register_model(NEXT_FRAME, ForecasterConfig)
def convlstm_encoder_forecaster(
    *,
    channels: int,
    frame_size: int,
    filters: list[int],
    kernel_size: int = 3,
    patch_size: int = 4,
) -> nn.Module:
    """Shi et al.'s encoder-forecaster on ``lrcn.nn.ConvLSTM2d``, with patch reshaping."""
    return ConvLSTMForecaster(channels, frame_size, filters, kernel_size, patch_size)


class PredictorConfig(ForecasterConfig):
    """``model:`` for the one-stack ConvLSTM (PredRNN's and OpenSTL's); options as the
    encoder-forecaster's."""

    name: Literal["convlstm"]  # type: ignore[assignment]


@register_model(NEXT_FRAME, PredictorConfig)
def convlstm(
    *,
    channels: int,
    frame_size: int,
    filters: list[int],
    kernel_size: int = 3,
    patch_size: int = 4,
) -> nn.Module:
    """One ConvLSTM stack over all frames, predicting each next frame (OpenSTL's ConvLSTM)."""
    return ConvLSTMPredictor(channels, frame_size, filters, kernel_size, patch_size)
