"""lrcn.nn.LSTM (fused and reference paths) against torch.nn.LSTM, as ratios from one run.

Two extra baselines explain the reference path's ratio on a given CPU: torch.nn.LSTM with
oneDNN switched off (ATen's own CPU LSTM), and the "matmul floor", the bare matrix products a
Python-level LSTM cannot avoid (one input projection and T recurrent products per layer).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from common import interleaved_best
from lrcn.nn import LSTM

BATCH = 32
GRID = list(itertools.product([16, 64], [1280, 512], [256, 1024], [1, 2]))  # T, I, H, layers
QUICK_GRID = [(16, 512, 256, 1), (16, 1280, 1024, 2)]


def _matmul_floor(x: torch.Tensor, lstm: torch.nn.LSTM) -> torch.Tensor:
    """The products of a hoisted Python LSTM, without any gate arithmetic. x: (B, T, I)."""
    h = x.new_zeros(x.shape[0], lstm.hidden_size)
    layer_in = x
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}")
        proj = F.linear(layer_in, w_ih)  # (B, T, 4H)
        outs = []
        for p_t in proj.unbind(1):
            g = torch.addmm(p_t, h, w_hh.t())  # (B, 4H)
            outs.append(g[:, : lstm.hidden_size])
        layer_in = torch.stack(outs, 1)  # (B, T, H)
    return layer_in


def run(quick: bool = False) -> list[dict[str, float | int]]:
    rows = []
    for steps, input_size, hidden, layers in QUICK_GRID if quick else GRID:
        torch.manual_seed(0)
        ref = torch.nn.LSTM(input_size, hidden, layers, batch_first=True)
        fused = LSTM(input_size, hidden, layers, batch_first=True)
        reference = LSTM(input_size, hidden, layers, batch_first=True, implementation="reference")
        fused.load_state_dict(ref.state_dict())
        reference.load_state_dict(ref.state_dict())
        x = torch.randn(BATCH, steps, input_size, requires_grad=True)
        big = hidden * steps * layers >= 1024 * 64
        reps_f, reps_fb = (1, 1) if big else (3, 2)  # per round, two rounds

        def fwd(module):
            def go():
                with torch.no_grad():
                    module(x)

            return go

        def fwd_bwd(module):
            def go():
                module(x)[0].sum().backward()

            return go

        def no_onednn(fn):
            def go():
                with torch.backends.mkldnn.flags(enabled=False):
                    fn()

            return go

        def floor_fwd():
            with torch.no_grad():
                _matmul_floor(x, ref)

        row: dict[str, float | int] = {"T": steps, "I": input_size, "H": hidden, "L": layers}
        row.update(
            interleaved_best(
                [
                    ("torch_f", fwd(ref), reps_f),
                    ("fused_f", fwd(fused), reps_f),
                    ("ref_f", fwd(reference), reps_f),
                    ("noonednn_f", no_onednn(fwd(ref)), reps_f),
                    ("floor_f", floor_fwd, reps_f),
                    ("torch_fb", fwd_bwd(ref), reps_fb),
                    ("fused_fb", fwd_bwd(fused), reps_fb),
                    ("ref_fb", fwd_bwd(reference), reps_fb),
                    ("noonednn_fb", no_onednn(fwd_bwd(ref)), reps_fb),
                ]
            )
        )
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


HEADER = (
    "| T | I | H | layers | nn.LSTM fwd ms | fused | reference | reference ÷ matmul floor "
    "| nn.LSTM fwd+bwd ms | fused | reference | reference ÷ nn.LSTM without oneDNN |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _format_row(r: dict[str, float | int]) -> str:
    return (
        f"| {r['T']} | {r['I']} | {r['H']} | {r['L']} | {r['torch_f']:.1f} "
        f"| {r['fused_f'] / r['torch_f']:.2f}× | {r['ref_f'] / r['torch_f']:.2f}× "
        f"| {r['ref_f'] / r['floor_f']:.2f}× "
        f"| {r['torch_fb']:.1f} | {r['fused_fb'] / r['torch_fb']:.2f}× "
        f"| {r['ref_fb'] / r['torch_fb']:.2f}× | {r['ref_fb'] / r['noonednn_fb']:.2f}× |"
    )


def table(rows: list[dict[str, float | int]]) -> str:
    return "\n".join([HEADER, *(_format_row(r) for r in rows)])
