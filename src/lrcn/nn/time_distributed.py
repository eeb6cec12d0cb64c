"""TimeDistributed: apply a per-frame module to every time step of a batch-first sequence."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["TimeDistributed"]


def _unfold_time(value: Any, steps: int) -> Any:
    """Undo the (B*T) flattening on a tensor, or on each tensor of a (named) tuple."""
    if isinstance(value, Tensor):
        # -1, not batch: a traced export keeps the batch free (unflatten bakes it in)
        return value.reshape(-1, steps, *value.shape[1:])  # (B*T, ...) -> (B, T, ...)
    if isinstance(value, tuple):
        items = [_unfold_time(v, steps) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    raise TypeError(
        f"TimeDistributed: the wrapped module returned {type(value).__name__}; expected a "
        "tensor or a tuple of tensors"
    )


class TimeDistributed(nn.Module):
    """Apply ``module`` to every step: ``(B, T, ...) -> (B, T, ...)``, like Keras' TimeDistributed.

    The T frames of all B sequences go through the module as one batch of B*T, which is both the
    fastest way and equal to a Python loop over T for any module whose output for a sample does
    not depend on the rest of the batch (for BatchNorm in training mode, the statistics then
    cover all B*T frames). A module that returns a tuple (or NamedTuple) of tensors gets each of
    them reshaped back to ``(B, T, ...)``.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Any:
        """``x (B, T, *feature_shape)`` -> module output with ``(B, T)`` leading dimensions."""
        if x.dim() < 3:
            raise ValueError(
                f"TimeDistributed expects (B, T, ...) with at least one feature dimension, "
                f"got shape {tuple(x.shape)}"
            )
        steps = x.shape[1]
        out = self.module(x.flatten(0, 1))  # (B*T, ...)
        return _unfold_time(out, steps)
