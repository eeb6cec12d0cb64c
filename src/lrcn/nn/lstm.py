"""LSTM and plain RNN written from the LRCN equations, drop-in for ``torch.nn.LSTM`` / ``nn.RNN``.

The LRCN paper (Donahue et al., CVPR 2015, eq. 2) writes one LSTM step as::

    i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i)          input gate
    f_t = σ(W_xf x_t + W_hf h_{t-1} + b_f)          forget gate
    o_t = σ(W_xo x_t + W_ho h_{t-1} + b_o)          output gate
    g_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)       input modulation
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                 cell
    h_t = o_t ⊙ tanh(c_t)                           hidden state

PyTorch stores the four gates' weights stacked in the order (i, f, g, o) as ``weight_ih_l{k}``
``(4H, I)`` and ``weight_hh_l{k}`` ``(4H, H)``, with two biases ``bias_ih_l{k}`` and
``bias_hh_l{k}`` that are simply added. We use exactly those names and layouts, so a state dict
moves between :class:`LSTM` and ``torch.nn.LSTM`` both ways.

Two implementations compute the same function:

* ``implementation="reference"``: the equations above in Python, one time step at a time. The
  input projection ``W_x· x_t`` of every step is done up front in one matrix product, because it
  does not depend on ``h`` (this is what makes a Python LSTM competitive on the CPU).
* ``implementation="fused"`` (default): the same weights handed to PyTorch's native fused LSTM
  kernel (oneDNN on the CPU, cuDNN on the GPU). It is as fast as ``torch.nn.LSTM`` because it is
  the same kernel, and it exports to ONNX as one ``LSTM`` node.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

Implementation = Literal["fused", "reference"]
Lengths = Tensor | Sequence[int]

__all__ = ["LSTM", "RNN", "LSTMCell", "RNNCell", "lstm_step", "rnn_tanh_step"]


# --------------------------------------------------------------------------------------------
# One step of each recurrence: the equations, and nothing else.
# --------------------------------------------------------------------------------------------


def lstm_step(
    x_proj: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One LSTM step, given the input projection ``W_x· x_t + b_x·`` already computed.

    Args:
        x_proj: ``(B, 4H)`` input projection of this step, gates stacked (i, f, g, o).
        h: ``(B, H)`` previous hidden state h_{t-1}.
        c: ``(B, H)`` previous cell c_{t-1}.
        weight_hh: ``(4H, H)`` recurrent weights.
        bias_hh: ``(4H,)`` recurrent bias, or None.

    Returns:
        ``(h_t, c_t)``, each ``(B, H)``.
    """
    gates = torch.addmm(x_proj, h, weight_hh.t())  # x_proj + h W_hhᵀ: (B, 4H)
    if bias_hh is not None:
        gates = gates + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(i)  # input gate
    f = torch.sigmoid(f)  # forget gate
    g = torch.tanh(g)  # input modulation
    o = torch.sigmoid(o)  # output gate
    c = f * c + i * g  # cell
    h = o * torch.tanh(c)  # hidden state
    return h, c


def rnn_tanh_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One Elman RNN step ``h_t = tanh(W_x x_t + b_x + W_h h_{t-1} + b_h)``; shapes ``(B, H)``."""
    pre = torch.addmm(x_proj, h, weight_hh.t())  # x_proj + h W_hhᵀ: (B, H)
    if bias_hh is not None:
        pre = pre + bias_hh
    return torch.tanh(pre)


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


class _CellBase(nn.Module):
    """Parameters ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, biases ``(G*H,)``, as torch."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        gates: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih: nn.Parameter | None = nn.Parameter(torch.empty(gates * hidden_size, **kw))
            self.bias_hh: nn.Parameter | None = nn.Parameter(torch.empty(gates * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/√H, 1/√H) for every weight and bias, as torch.nn does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class LSTMCell(_CellBase):
    """One LSTM step (the LRCN equations); drop-in for ``torch.nn.LSTMCell``.

    ``forward(input (B, I) or (I,), hx=(h (B, H), c (B, H)) or None) -> (h', c')``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(B, I)`` and optional ``((B, H), (B, H))`` -> ``((B, H), (B, H))``; unbatched too."""
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        h, c = lstm_step(self._project(x), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class RNNCell(_CellBase):
    """One tanh RNN step; drop-in for ``torch.nn.RNNCell`` (``nonlinearity="tanh"``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``(B, I)`` and optional ``(B, H)`` -> ``(B, H)``; unbatched ``(I,)`` too."""
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            h = hx if batched else hx.unsqueeze(0)
        h = rnn_tanh_step(self._project(x), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


# --------------------------------------------------------------------------------------------
# Stacked, optionally bidirectional layers
# --------------------------------------------------------------------------------------------


class _RecurrentBase(nn.Module):
    """Shared machinery of :class:`LSTM` and :class:`RNN`: parameters, input forms, lengths.

    Subclasses set ``_gates`` (4 for LSTM, 1 for RNN) and implement ``_fused`` (the native kernel)
    and ``_reference_direction`` (one layer, one direction, spelled out).
    """

    _gates: int
    _has_cell: bool

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        implementation: Implementation = "fused",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0 or isinstance(dropout, bool):
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        if implementation not in ("fused", "reference"):
            raise ValueError(
                f"implementation must be 'fused' or 'reference', got {implementation!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} acts between stacked layers only, and num_layers=1: "
                "it has no effect",
                stacklevel=2,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.implementation: Implementation = implementation
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        gate_size = self._gates * hidden_size
        num_directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes: dict[str, tuple[int, ...]] = {
                    f"weight_ih{sfx}": (gate_size, layer_input),
                    f"weight_hh{sfx}": (gate_size, hidden_size),
                }
                if bias:
                    shapes[f"bias_ih{sfx}"] = (gate_size,)
                    shapes[f"bias_hh{sfx}"] = (gate_size,)
                for name, shape in shapes.items():
                    self.register_parameter(name, nn.Parameter(torch.empty(*shape, **kw)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _flat_weights(self) -> list[Tensor]:
        """Parameters in the order the native kernel expects: per layer, per direction."""
        return [getattr(self, name) for name in self._flat_weights_names]

    def reset_parameters(self) -> None:
        """Uniform(-1/√H, 1/√H) for every weight and bias, as torch.nn does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _layer_params(
        self, layer: int, direction: int
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih = getattr(self, f"weight_ih{sfx}")
        w_hh = getattr(self, f"weight_hh{sfx}")
        b_ih = getattr(self, f"bias_ih{sfx}") if self.bias else None
        b_hh = getattr(self, f"bias_hh{sfx}") if self.bias else None
        return w_ih, w_hh, b_ih, b_hh

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + f", implementation={self.implementation!r}"

    # ---- input handling shared by both implementations ---------------------------------

    def _zeros_state(self, batch: int, like: Tensor) -> Tensor:
        return like.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__} expects a 3-D input (batch and time) or a 2-D unbatched "
                f"input, got shape {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} was built with input_size={self.input_size} but the "
                f"input's last dimension is {x.shape[-1]} (shape {tuple(x.shape)})"
            )

    def _check_state(self, name: str, state: Tensor, batch: int) -> None:
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {expected} "
                f"(num_layers * num_directions, batch, hidden_size), got {tuple(state.shape)}"
            )

    def _run(
        self, input: Tensor | PackedSequence, states: list[Tensor] | None, lengths: Lengths | None
    ) -> tuple[Tensor | PackedSequence, list[Tensor]]:
        """Normalise the input forms, dispatch to an implementation, restore the output form.

        ``states`` holds ``[h0]`` (RNN) or ``[h0, c0]`` (LSTM), each ``(L*D, B, H)``, in the
        caller's batch order.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("pass either a PackedSequence or `lengths`, not both")
            return self._run_packed(input, states)

        self._check_input(input)
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1 if not self.batch_first else 0)
            if states is not None:
                states = [s.unsqueeze(1) for s in states]
        x = input if self.batch_first else input.transpose(0, 1)  # (B, T, I)
        batch, steps = x.shape[0], x.shape[1]
        if states is not None:
            for name, s in zip(("h0", "c0"), states, strict=False):
                self._check_state(name, s, batch)
        lens = None if lengths is None else _as_lengths(lengths, batch, steps)

        if self.implementation == "fused":
            if lens is None:
                out, states = self._fused(input, states, batch_sizes=None)
            else:
                if states is None:  # zeros sized by x, not by the packed batch: a traced
                    # export then keeps the batch free (batch_sizes[0] would be a constant)
                    states = [
                        self._zeros_state(batch, x) for _ in range(2 if self._has_cell else 1)
                    ]
                packed = pack_padded_sequence(
                    input, lens, batch_first=self.batch_first, enforce_sorted=False
                )
                packed_out, states = self._run_packed(packed, states)
                assert isinstance(packed_out, PackedSequence)
                out, _ = pad_packed_sequence(
                    packed_out, batch_first=self.batch_first, total_length=steps
                )
        else:
            out_bt, states = self._reference(x, states, lens)  # (B, T, D*H)
            out = out_bt if self.batch_first else out_bt.transpose(0, 1)

        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            states = [s.squeeze(1) for s in states]
        return out, states

    def _run_packed(
        self, packed: PackedSequence, states: list[Tensor] | None
    ) -> tuple[PackedSequence, list[Tensor]]:
        self._check_input(packed.data)  # (N, I): all steps of all sequences
        batch = int(packed.batch_sizes[0])
        if states is not None:
            for name, s in zip(("h0", "c0"), states, strict=False):
                self._check_state(name, s, batch)
        if self.implementation == "fused":
            sorted_idx = packed.sorted_indices
            if states is not None and sorted_idx is not None:
                states = [s.index_select(1, sorted_idx) for s in states]
            data, states = self._fused(packed.data, states, batch_sizes=packed.batch_sizes)
            if packed.unsorted_indices is not None:
                states = [s.index_select(1, packed.unsorted_indices) for s in states]
            return PackedSequence(
                data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            ), states
        padded, lens = pad_packed_sequence(packed, batch_first=True)  # (B, T, I), caller order
        out, states = self._reference(padded, states, lens)
        return _pack_like(out, packed), states

    # ---- the reference implementation: layers and directions, spelled out -------------

    def _reference(
        self, x: Tensor, states: list[Tensor] | None, lengths: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        """``x (B, T, I)`` -> output ``(B, T, D*H)`` and final states ``(L*D, B, H)`` each."""
        batch = x.shape[0]
        if states is None:
            states = [self._zeros_state(batch, x) for _ in range(2 if self._has_cell else 1)]
        if lengths is not None:
            lengths = lengths.to(x.device)
        finals: list[list[Tensor]] = [[] for _ in states]
        layer_input = x
        for layer in range(self.num_layers):
            direction_outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                out, last = self._reference_direction(
                    layer_input,
                    [s[k] for s in states],
                    *self._layer_params(layer, direction),
                    lengths=lengths,
                    reverse=direction == 1,
                )
                direction_outputs.append(out)  # (B, T, H)
                for store, s in zip(finals, last, strict=True):
                    store.append(s)
            layer_input = torch.cat(direction_outputs, dim=2)  # (B, T, D*H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, [torch.stack(f, dim=0) for f in finals]

    def _reference_direction(
        self,
        x: Tensor,
        state: list[Tensor],
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        *,
        lengths: Tensor | None,
        reverse: bool,
    ) -> tuple[Tensor, list[Tensor]]:
        """One layer in one direction: ``x (B, T, I)`` -> ``(B, T, H)`` and last state(s)."""
        if reverse:
            x = _reverse_padded(x, lengths)
        # The input projection does not depend on h: do all T steps in one product, and add
        # both biases there once instead of once per step.
        bias = b_ih + b_hh if b_ih is not None and b_hh is not None else None
        x_proj = F.linear(x, w_ih, bias)  # (B, T, G*H)
        outputs = []
        # unbind, not x_proj[:, t]: per-step indexing makes backward cost grow with T².
        for t, x_t in enumerate(x_proj.unbind(1)):  # each (B, G*H)
            new_state = self._step(x_t, state, w_hh)
            if lengths is None:
                state = new_state
                outputs.append(state[0])
            else:
                # A sequence that has ended keeps its last state and outputs zeros, as packed
                # sequences do in torch.nn.
                valid = (lengths > t).unsqueeze(1)  # (B, 1)
                state = [torch.where(valid, n, s) for n, s in zip(new_state, state, strict=True)]
                outputs.append(new_state[0] * valid)
        out = torch.stack(outputs, dim=1)  # (B, T, H)
        if reverse:
            out = _reverse_padded(out, lengths)
        return out, state

    def _step(self, x_t: Tensor, state: list[Tensor], w_hh: Tensor) -> list[Tensor]:
        """One step from the projected input ``x_t (B, G*H)`` (both biases already in it)."""
        raise NotImplementedError

    def _fused(
        self, input: Tensor, states: list[Tensor] | None, batch_sizes: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        raise NotImplementedError


class LSTM(_RecurrentBase):
    """Multi-layer LSTM from the LRCN equations; a drop-in for ``torch.nn.LSTM``.

    Same constructor arguments, parameter names, return values and defaults as ``torch.nn.LSTM``
    (so ``batch_first=False`` by default, like torch; lrcn's models pass ``batch_first=True``),
    plus ``implementation`` (``"fused"`` native kernel or ``"reference"`` Python steps) and a
    ``lengths`` argument to ``forward`` for padded variable-length batches.

    Shapes (B batch, T time, I input_size, H hidden_size, L num_layers, D 2 if bidirectional
    else 1): input ``(T, B, I)`` (``(B, T, I)`` if batch_first), ``(T, I)`` unbatched, or a
    ``PackedSequence``; output ``(T, B, D*H)`` in the same layout, or a ``PackedSequence``;
    ``h_n`` and ``c_n`` ``(L*D, B, H)``.

    With ``lengths`` (or a packed input) each sequence stops at its own length: outputs past the
    end are zeros, ``h_n``/``c_n`` are the states at each sequence's last step, and the reverse
    direction starts at each sequence's own last step.
    """

    _gates = 4
    _has_cell = True

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: tuple[Tensor, Tensor] | None = None,
        lengths: Lengths | None = None,
    ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """Run the LSTM.

        Args:
            input: ``(T, B, I)``, ``(B, T, I)`` with batch_first, ``(T, I)``, or PackedSequence.
            hx: optional ``(h0, c0)``, each ``(L*D, B, H)`` (``(L*D, H)`` unbatched); zeros if None.
            lengths: optional ``(B,)`` valid lengths of a padded batch.

        Returns:
            ``(output, (h_n, c_n))`` exactly as ``torch.nn.LSTM`` returns them.
        """
        states = None if hx is None else [hx[0], hx[1]]
        out, (h, c) = self._run(input, states, lengths)
        return out, (h, c)

    def _step(self, x_t: Tensor, state: list[Tensor], w_hh: Tensor) -> list[Tensor]:
        h, c = lstm_step(x_t, state[0], state[1], w_hh, None)
        return [h, c]

    def _fused(
        self, input: Tensor, states: list[Tensor] | None, batch_sizes: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        if states is None:
            batch = (
                input.shape[0 if self.batch_first else 1]
                if batch_sizes is None
                else int(batch_sizes[0])
            )
            zeros = self._zeros_state(batch, input)
            states = [zeros, zeros]
        hx = (states[0], states[1])
        if batch_sizes is None:
            out, h, c = torch.lstm(
                input, hx, self._flat_weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional, self.batch_first,
            )  # fmt: skip
        else:
            out, h, c = torch.lstm(
                input, batch_sizes, hx, self._flat_weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional,
            )  # fmt: skip
        return out, [h, c]


class RNN(_RecurrentBase):
    """Multi-layer Elman RNN with tanh, ``h_t = tanh(W_x x_t + b_x + W_h h_{t-1} + b_h)``.

    Drop-in for ``torch.nn.RNN(nonlinearity="tanh")`` with the same interface as :class:`LSTM`
    (``forward(input, hx=None, lengths=None) -> (output, h_n)``). It is here to be compared with
    the LSTM: its gradient through time is a product of ``diag(1 - h²) W_h`` factors and vanishes
    (see :mod:`lrcn.studies.gradients`).
    """

    _gates = 1
    _has_cell = False

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | None = None,
        lengths: Lengths | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Run the RNN; shapes as :meth:`LSTM.forward`, with ``hx``/``h_n`` ``(L*D, B, H)``."""
        out, (h,) = self._run(input, None if hx is None else [hx], lengths)
        return out, h

    def _step(self, x_t: Tensor, state: list[Tensor], w_hh: Tensor) -> list[Tensor]:
        return [rnn_tanh_step(x_t, state[0], w_hh, None)]

    def _fused(
        self, input: Tensor, states: list[Tensor] | None, batch_sizes: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        if states is None:
            batch = (
                input.shape[0 if self.batch_first else 1]
                if batch_sizes is None
                else int(batch_sizes[0])
            )
            states = [self._zeros_state(batch, input)]
        if batch_sizes is None:
            out, h = torch.rnn_tanh(
                input, states[0], self._flat_weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional, self.batch_first,
            )  # fmt: skip
        else:
            out, h = torch.rnn_tanh(
                input, batch_sizes, states[0], self._flat_weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional,
            )  # fmt: skip
        return out, [h]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _check_sizes(input_size: int, hidden_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _as_lengths(lengths: Lengths, batch: int, steps: int) -> Tensor:
    """Validate ``lengths`` against a ``(B, T, ...)`` batch; return an int64 CPU tensor."""
    lens = torch.as_tensor(lengths).to("cpu", torch.int64)
    if lens.shape != (batch,):
        raise ValueError(
            f"lengths must have shape ({batch},) (one per sequence), got {tuple(lens.shape)}"
        )
    if batch and (int(lens.min()) < 1 or int(lens.max()) > steps):
        raise ValueError(
            f"every length must be in 1..{steps} (the padded time dimension), got "
            f"min {int(lens.min())}, max {int(lens.max())}"
        )
    return lens


def _reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x (B, T, F)`` within its own length; padding stays at the end."""
    if lengths is None:
        return x.flip(1)
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(t < lens, lens - 1 - t, t)  # (B, T)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


def _pack_like(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack ``padded (B, T, F)`` (caller's batch order) with exactly the layout of ``like``."""
    order = like.sorted_indices
    if order is None:
        order = torch.arange(int(like.batch_sizes[0]), device=padded.device)
    order = order.to(padded.device)
    rows = [padded[order[: int(bs)], t] for t, bs in enumerate(like.batch_sizes)]  # (bs_t, F)
    return PackedSequence(
        torch.cat(rows, dim=0), like.batch_sizes, like.sorted_indices, like.unsorted_indices
    )
