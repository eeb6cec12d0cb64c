"""The one interface every backbone has, and the preprocessing preset it carries.

A backbone turns frames ``(N, 3, H, W)`` (already normalised by its preset) into a feature
grid ``(N, C, h, w)`` (``forward_features``) and a pooled vector ``(N, C)`` (``forward``);
``out_features`` is C. Its :class:`Preprocess` travels in checkpoints, so predict and serve
prepare frames exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["Backbone", "Preprocess"]


@dataclass(frozen=True)
class Preprocess:
    """How raw uint8 RGB frames become a backbone's input.

    Frames are resized so the short side is ``resize``, center-cropped to ``crop``×``crop``
    (random crop when training, if asked), scaled to [0, 1] and normalised per channel.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(
            resize=int(data["resize"]),
            crop=int(data["crop"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
        )

    def frames_to_tensor(
        self, frames: np.ndarray, crop_offset: tuple[float, float] | None = None
    ) -> Tensor:
        """``uint8 (T, H, W, 3)`` -> normalised ``float32 (T, 3, crop, crop)``:
        :meth:`crops`, then :meth:`normalize`.

        ``crop_offset`` picks the crop's place as fractions (0..1) of the free room along
        height and width; None is the center. All frames of a clip share one crop.
        """
        return self.normalize(torch.from_numpy(self.crops(frames, crop_offset)))

    def crops(
        self, frames: np.ndarray, crop_offset: tuple[float, float] | None = None
    ) -> np.ndarray:
        """``uint8 (T, H, W, 3)`` -> ``uint8 (T, crop, crop, 3)``: each frame resized so its
        short side is ``resize`` (OpenCV, INTER_AREA), then the crop (see
        :meth:`frames_to_tensor`). The geometric half alone, kept ``uint8``: feature extraction
        queues crops, 4x smaller than normalised floats, and normalises them in its engine."""
        import cv2

        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got shape {frames.shape}")
        height, width = frames.shape[1:3]
        scale = self.resize / min(height, width)
        new_h = max(self.crop, round(height * scale))
        new_w = max(self.crop, round(width * scale))
        fy, fx = crop_offset if crop_offset is not None else (0.5, 0.5)
        top = round((new_h - self.crop) * fy)
        left = round((new_w - self.crop) * fx)
        out = np.empty((len(frames), self.crop, self.crop, 3), dtype=np.uint8)  # (T, S, S, 3)
        for i, frame in enumerate(frames):  # one frame resized at a time: only its crop kept
            if (new_h, new_w) != (height, width):
                frame = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
            out[i] = frame[top : top + self.crop, left : left + self.crop]
        return out

    def normalize(self, crops: Tensor) -> Tensor:
        """``uint8 (N, S, S, 3)`` -> ``float32 (N, 3, S, S)`` scaled to [0, 1], then
        standardised with ``mean`` and ``std``. Traceable: the extraction engine's ONNX graph
        runs it."""
        x = crops.permute(0, 3, 1, 2).float().div(255.0)  # (N, 3, S, S) in [0, 1]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def shown_crop(self, image: np.ndarray) -> np.ndarray:
        """``uint8 (H, W, 3)`` -> the centre crop the model sees, as ``uint8 (crop, crop, 3)``:
        what an attention map is laid over."""
        crop = self.frames_to_tensor(image[None])[0]  # (3, crop, crop) normalised
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((crop * std + mean).clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


class Backbone(nn.Module):
    """A per-frame CNN: ``forward_features`` -> grid ``(N, C, h, w)``, ``forward`` -> ``(N, C)``."""

    def __init__(
        self, body: nn.Module, out_features: int, preprocess: Preprocess, name: str
    ) -> None:
        super().__init__()
        self.body = body
        self.out_features = out_features
        self.preprocess = preprocess
        self.name = name

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` normalised frames -> feature grid ``(N, C, h, w)``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` -> globally average-pooled features ``(N, C)``."""
        return self.forward_features(x).mean(dim=(2, 3))
