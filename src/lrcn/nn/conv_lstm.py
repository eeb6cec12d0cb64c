"""ConvLSTM2d: an LSTM whose gates are convolutions, with the semantics of Keras 3 ``ConvLSTM2D``.

Shi et al., "Convolutional LSTM Network" (NeurIPS 2015). With ``*`` a 2-D convolution and
X_t ``(C, H, W)`` the frame at step t, one step is (Keras' gate order i, f, c, o)::

    i_t = σ_r(W_xi * X_t + W_hi * H_{t-1} + b_i)
    f_t = σ_r(W_xf * X_t + W_hf * H_{t-1} + b_f)
    C_t = f_t ⊙ C_{t-1} + i_t ⊙ act(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = σ_r(W_xo * X_t + W_ho * H_{t-1} + b_o)
    H_t = o_t ⊙ act(C_t)

σ_r is ``recurrent_activation`` (sigmoid) and act is ``activation`` (tanh). The input
convolution uses the layer's ``strides``, ``padding`` and ``dilation_rate``; the recurrent
convolution always uses stride 1, no dilation and "same" padding. "same" pads like TensorFlow:
when the total padding is odd the extra pixel goes right/bottom.

Differences from Keras are layout only: inputs are ``(B, T, C, H, W)`` (PyTorch's channels
first) and the input channel count is given up front (``in_channels``). Weights are stored as
PyTorch convolution weights ``weight_ih (4F, C, kh, kw)``, ``weight_hh (4F, F, kh, kw)`` and
``bias (4F,)``; :meth:`ConvLSTM2d.load_keras_weights` takes Keras' ``(kh, kw, C, 4F)`` arrays.

Dropout follows Keras too: in training, ``dropout`` draws four masks over the input frame (one
per gate) and ``recurrent_dropout`` four over the hidden state; each mask is drawn once per
call and reused at every time step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvLSTM2d", "ConvLSTMCell", "ConvLSTMOutput", "keras_activation"]

Activation = str | Callable[[Tensor], Tensor] | None
IntPair = int | tuple[int, int]


def _hard_sigmoid(x: Tensor) -> Tensor:
    # Keras 3: relu6(x + 3) / 6 (Keras 2 used 0.2 x + 0.5; the layer default is sigmoid anyway).
    return F.relu6(x + 3.0) / 6.0


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "relu": F.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "silu": F.silu,
    "swish": F.silu,
    "linear": lambda x: x,
}


def keras_activation(activation: Activation) -> Callable[[Tensor], Tensor]:
    """Map a Keras activation name (or a callable, or None for linear) to a function."""
    if activation is None:
        return _ACTIVATIONS["linear"]
    if callable(activation):
        return activation
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; expected a callable or one of "
            f"{sorted(_ACTIVATIONS)}"
        ) from None


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair[0], pair[1]


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) along one axis: output = ceil(size/stride)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def _conv_same(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int = 1,
) -> Tensor:
    """2-D convolution with TF "same" padding; pads explicitly only when it is asymmetric."""
    kh, kw = weight.shape[-2:]
    top, bottom = _same_padding(x.shape[-2], kh, stride[0], dilation[0])
    left, right = _same_padding(x.shape[-1], kw, stride[1], dilation[1])
    if top == bottom and left == right:
        return F.conv2d(x, weight, bias, stride, (top, left), dilation, groups)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride, 0, dilation, groups)


def _dropout_masks(like: Tensor, p: float, count: int) -> Tensor:
    """``count`` inverted-dropout masks like ``like (B, C, H, W)``: ``(count, B, C, H, W)``."""
    keep = torch.full((count, *like.shape), 1.0 - p, device=like.device, dtype=like.dtype)
    return torch.bernoulli(keep) / (1.0 - p)


def _gated(x: Tensor, masks: Tensor | None) -> tuple[Tensor, int]:
    """Stack one masked copy of ``x (N, C, H, W)`` per gate for a grouped convolution.

    With masks ``(4, N, C, H, W)`` returns ``(N, 4C, H, W)`` and groups=4, so the gate k weights
    see only copy k; without masks returns ``x`` and groups=1 (all gates share one input).
    """
    if masks is None:
        return x, 1
    stacked = x.unsqueeze(0) * masks  # (4, N, C, H, W)
    return stacked.transpose(0, 1).flatten(1, 2), 4  # (N, 4C, H, W)


def _default_gates_(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The sigmoid/tanh gate arithmetic of one step, in place on ``gates (B, 4F, H, W)``.

    The same ops as the plain path in :meth:`ConvLSTMCell.step`, with bit-identical results
    (i and f get a sigmoid call each: one call over both slices rounds a few elements
    differently), but without its temporaries (the 4F sum and seven ``(B, F, H, W)`` maps).
    No autograd: the activations overwrite ``gates``, which the caller must own (a fresh
    convolution output).
    """
    i, f, g, o = gates.chunk(4, dim=1)
    i.sigmoid_()
    f.sigmoid_()
    g.tanh_()
    o.sigmoid_()
    c = f * c
    c.add_(i.mul_(g))
    return torch.tanh(c).mul_(o), c


class ConvLSTMOutput(NamedTuple):
    """What :class:`ConvLSTM2d` returns when ``return_state=True``."""

    output: Tensor  # (B, T, F, H', W') with return_sequences, else (B, F, H', W')
    h: Tensor  # (B, F, H', W') last hidden state
    c: Tensor  # (B, F, H', W') last cell state


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step; :class:`ConvLSTM2d` runs it over time. Arguments as ConvLSTM2d's.

    ``forward(x (B, C, H, W), state=(h, c) or None) -> (h', c')`` each ``(B, F, H', W')``.
    Dropout masks, when wanted, are passed in by the caller so they can be kept across steps.
    """

    #: Run the default sigmoid/tanh gates in place when nothing needs gradients (inference):
    #: the same result as the plain ops, with fewer temporaries. False forces the plain path.
    fast_gates: bool = True

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: IntPair,
        strides: IntPair = 1,
        padding: str = "valid",
        dilation_rate: IntPair = 1,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("filters", filters)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides > 1 is incompatible with dilation_rate > 1 (as in Keras), got "
                f"strides={self.strides}, dilation_rate={self.dilation_rate}"
            )
        self.in_channels = in_channels
        self.filters = filters
        self.padding = padding
        self.activation = keras_activation(activation)
        self.recurrent_activation = keras_activation(recurrent_activation)
        self.use_bias = use_bias
        self.unit_forget_bias = unit_forget_bias
        kh, kw = self.kernel_size
        self.weight_ih = nn.Parameter(torch.empty(4 * filters, in_channels, kh, kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * filters, filters, kh, kw))
        if use_bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(4 * filters))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras' defaults: glorot_uniform kernel, orthogonal recurrent kernel, zero bias
        (ones on the forget gate when ``unit_forget_bias``)."""
        kh, kw = self.kernel_size
        receptive = kh * kw
        fan_in, fan_out = receptive * self.in_channels, receptive * 4 * self.filters
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(self.weight_ih, -limit, limit)
        # Keras orthogonalises the recurrent kernel flattened to (kh*kw*F, 4F).
        flat = torch.empty(receptive * self.filters, 4 * self.filters)
        nn.init.orthogonal_(flat)
        keras_layout = flat.reshape(kh, kw, self.filters, 4 * self.filters)
        with torch.no_grad():
            self.weight_hh.copy_(keras_layout.permute(3, 2, 0, 1))
            if self.bias is not None:
                self.bias.zero_()
                if self.unit_forget_bias:
                    self.bias[self.filters : 2 * self.filters] = 1.0

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size ``(H', W')`` of the states for an input frame of ``(height, width)``."""
        sizes = []
        for size, k, s, d in zip(
            (height, width), self.kernel_size, self.strides, self.dilation_rate, strict=True
        ):
            if self.padding == "same":
                sizes.append(-(-size // s))
            else:
                sizes.append((size - (k - 1) * d - 1) // s + 1)
        if min(sizes) < 1:
            raise ValueError(
                f"a {height}x{width} input is smaller than the {self.kernel_size} kernel "
                f"(dilation {self.dilation_rate}) with padding='valid'"
            )
        return sizes[0], sizes[1]

    def input_conv(self, x: Tensor, masks: Tensor | None = None) -> Tensor:
        """``W_x * X + b`` for all four gates: ``(N, C, H, W)`` -> ``(N, 4F, H', W')``."""
        x, groups = _gated(x, masks)
        if self.padding == "same":
            return _conv_same(
                x, self.weight_ih, self.bias, self.strides, self.dilation_rate, groups
            )
        return F.conv2d(x, self.weight_ih, self.bias, self.strides, 0, self.dilation_rate, groups)

    def recurrent_conv(self, h: Tensor, masks: Tensor | None = None) -> Tensor:
        """``W_h * H`` for all gates, stride 1, "same": ``(B, F, h, w)`` -> ``(B, 4F, h, w)``."""
        h, groups = _gated(h, masks)
        return _conv_same(h, self.weight_hh, None, (1, 1), (1, 1), groups)

    def step(
        self, x_conv: Tensor, h: Tensor, c: Tensor, recurrent_masks: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step from the input convolution ``x_conv (B, 4F, H', W')`` already computed."""
        rec = self.recurrent_conv(h, recurrent_masks)  # (B, 4F, H', W'), a fresh tensor
        if self._in_place_gates_ok(x_conv, rec, c):
            return _default_gates_(rec.add_(x_conv), c)
        gates = x_conv + rec
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, F, H', W')
        i = self.recurrent_activation(i)
        f = self.recurrent_activation(f)
        c = f * c + i * self.activation(g)
        o = self.recurrent_activation(o)
        h = o * self.activation(c)
        return h, c

    def _in_place_gates_ok(self, x_conv: Tensor, rec: Tensor, c: Tensor) -> bool:
        """Whether :meth:`step` may take the in-place path: default activations, no autograd
        graph to record, no tracing (keeps exported graphs free of in-place ops on views)."""
        return (
            self.fast_gates
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and self.recurrent_activation is torch.sigmoid
            and self.activation is torch.tanh
            and not (
                torch.is_grad_enabled()
                and (x_conv.requires_grad or rec.requires_grad or c.requires_grad)
            )
            and x_conv.shape == rec.shape
            and x_conv.dtype == rec.dtype
        )

    def initial_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for a frame batch ``x (B, C, H, W)``."""
        oh, ow = self.output_size(x.shape[-2], x.shape[-1])
        zeros = x.new_zeros(x.shape[0], self.filters, oh, ow)
        return zeros, zeros

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x (B, C, H, W)``, optional ``(h, c)`` -> ``(h', c')`` each ``(B, F, H', W')``."""
        h, c = self.initial_state(x) if state is None else state
        return self.step(self.input_conv(x), h, c)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.filters}, kernel_size={self.kernel_size}, "
            f"strides={self.strides}, padding={self.padding!r}, dilation_rate={self.dilation_rate}"
        )


class ConvLSTM2d(nn.Module):
    """2-D convolutional LSTM over ``(B, T, C, H, W)`` with Keras 3 ``ConvLSTM2D``'s arguments.

    Args:
        in_channels: channels C of each input frame (Keras infers it; PyTorch needs it).
        filters: channels F of the hidden and cell states.
        kernel_size, strides, dilation_rate: of the input convolution (int or pair).
        padding: "valid" or "same" (TensorFlow's "same", asymmetric when needed).
        activation, recurrent_activation: Keras names ("tanh", "sigmoid", "hard_sigmoid",
            "relu", ...) or callables.
        use_bias, unit_forget_bias: one bias of 4F, initialised to 1 on the forget gate.
        return_sequences: return every step's H ``(B, T, F, H', W')`` instead of the last one.
        return_state: also return the last ``(h, c)``, as a :class:`ConvLSTMOutput`.
        go_backwards: run over time in reverse; like Keras, a returned sequence is then in the
            order it was processed (last input frame first).
        dropout, recurrent_dropout: fractions dropped from the input frame and the hidden state
            (training only; Keras' four per-gate masks, fixed over time).

    ``forward(x, initial_state=None)``: ``initial_state`` is an optional ``(h, c)`` each
    ``(B, F, H', W')``; passing back the returned state streams a video chunk by chunk with the
    same result as one call on the whole video (without dropout).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: IntPair,
        strides: IntPair = 1,
        padding: str = "valid",
        dilation_rate: IntPair = 1,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        self.cell = ConvLSTMCell(
            in_channels,
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            unit_forget_bias=unit_forget_bias,
        )
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)

    @property
    def filters(self) -> int:
        return self.cell.filters

    def forward(
        self, x: Tensor, initial_state: tuple[Tensor, Tensor] | None = None
    ) -> Tensor | ConvLSTMOutput:
        """``x (B, T, C, H, W)`` -> ``(B, T, F, H', W')`` or ``(B, F, H', W')`` (see class doc)."""
        if x.dim() != 5:
            raise ValueError(f"ConvLSTM2d expects (B, T, C, H, W), got shape {tuple(x.shape)}")
        batch, steps, channels = x.shape[:3]
        if channels != self.cell.in_channels:
            raise ValueError(
                f"ConvLSTM2d was built with in_channels={self.cell.in_channels} but the input "
                f"has {channels} channels (shape {tuple(x.shape)})"
            )
        if steps == 0:
            raise ValueError("ConvLSTM2d got a sequence of length 0")
        self.cell.output_size(x.shape[-2], x.shape[-1])  # a clear error for too-small frames
        if self.go_backwards:
            x = x.flip(1)
        frames = x.flatten(0, 1)  # (B*T, C, H, W)

        in_masks = rec_masks = None
        if self.training and self.dropout > 0:
            # One mask per gate over a frame, shared by all T steps: (4, B, C, H, W) -> per frame.
            in_masks = _dropout_masks(x[:, 0], self.dropout, 4)
            in_masks = in_masks.unsqueeze(2).expand(-1, -1, steps, -1, -1, -1).flatten(1, 2)

        # The input convolution does not depend on the state: all B*T frames in one call.
        x_conv = self.cell.input_conv(frames, in_masks)  # (B*T, 4F, H', W')
        x_conv = x_conv.unflatten(0, (batch, steps))  # (B, T, 4F, H', W')

        if initial_state is None:
            h, c = self.cell.initial_state(x[:, 0])
        else:
            h, c = initial_state
            expected = (batch, self.filters, *x_conv.shape[-2:])
            for name, s in (("h", h), ("c", c)):
                if tuple(s.shape) != expected:
                    raise ValueError(
                        f"initial_state {name} must have shape {expected}, got {tuple(s.shape)}"
                    )
        if self.training and self.recurrent_dropout > 0:
            rec_masks = _dropout_masks(h, self.recurrent_dropout, 4)  # (4, B, F, H', W')

        outputs = []
        for x_t in x_conv.unbind(1):  # each (B, 4F, H', W')
            h, c = self.cell.step(x_t, h, c, rec_masks)
            if self.return_sequences:
                outputs.append(h)
        output = torch.stack(outputs, dim=1) if self.return_sequences else h
        if self.return_state:
            return ConvLSTMOutput(output, h, c)
        return output

    def load_keras_weights(
        self, kernel: Any, recurrent_kernel: Any, bias: Any | None = None
    ) -> ConvLSTM2d:
        """Copy the arrays of a Keras ``ConvLSTM2D`` (``layer.get_weights()``) into this layer.

        Args:
            kernel: ``(kh, kw, C, 4F)``.
            recurrent_kernel: ``(kh, kw, F, 4F)``.
            bias: ``(4F,)``; required when ``use_bias`` and refused when not.

        Returns:
            self, so ``ConvLSTM2d(...).load_keras_weights(*layer.get_weights())`` reads well.
        """
        cell = self.cell
        kh, kw = cell.kernel_size
        f4 = 4 * cell.filters
        arrays: dict[str, tuple[Any, tuple[int, ...]]] = {
            "kernel": (kernel, (kh, kw, cell.in_channels, f4)),
            "recurrent_kernel": (recurrent_kernel, (kh, kw, cell.filters, f4)),
        }
        if cell.bias is not None:
            if bias is None:
                raise ValueError("this layer has use_bias=True: pass Keras' bias array too")
            arrays["bias"] = (bias, (f4,))
        elif bias is not None:
            raise ValueError("this layer has use_bias=False but a bias array was given")
        tensors = {}
        for name, (array, shape) in arrays.items():
            t = torch.as_tensor(np.asarray(array), dtype=cell.weight_ih.dtype)
            if tuple(t.shape) != shape:
                raise ValueError(f"Keras {name} should have shape {shape}, got {tuple(t.shape)}")
            tensors[name] = t
        with torch.no_grad():
            cell.weight_ih.copy_(tensors["kernel"].permute(3, 2, 0, 1))  # (4F, C, kh, kw)
            cell.weight_hh.copy_(tensors["recurrent_kernel"].permute(3, 2, 0, 1))
            if cell.bias is not None:
                cell.bias.copy_(tensors["bias"])
        return self

    def keras_weights(self) -> list[np.ndarray]:
        """This layer's weights in Keras' layout, ready for ``keras_layer.set_weights(...)``."""
        cell = self.cell
        arrays = [
            cell.weight_ih.detach().permute(2, 3, 1, 0).cpu().numpy(),
            cell.weight_hh.detach().permute(2, 3, 1, 0).cpu().numpy(),
        ]
        if cell.bias is not None:
            arrays.append(cell.bias.detach().cpu().numpy())
        return arrays

    def extra_repr(self) -> str:
        flags = [
            f"{k}={getattr(self, k)}"
            for k in ("return_sequences", "return_state", "go_backwards")
            if getattr(self, k)
        ]
        for k in ("dropout", "recurrent_dropout"):
            if getattr(self, k):
                flags.append(f"{k}={getattr(self, k)}")
        return ", ".join(flags)
