"""ConvLSTM2d: time per step against one Conv2d of the same shape (the floor).

One ConvLSTM step convolves the frame (C -> 4F) and the state (F -> 4F) with the same kernel;
one Conv2d from C+F channels to 4F channels does the same arithmetic, so it is the floor.

The forward pass is timed twice on the same weights: with the plain gate arithmetic
(``cell.fast_gates = False``: ten ops, each with its own temporary) and with the default
in-place gates that ``ConvLSTMCell.step`` takes when nothing needs gradients. Forward+backward
always runs the plain ops (autograd needs them), so it has one column.

"Gate work" isolates the elementwise part: one ``step`` minus its recurrent convolution alone
(each the best of many short runs), as a fraction of the Conv2d floor. It moves by a few
percent of a step, less than this machine's noise on whole-layer times.
"""

from __future__ import annotations

import torch

from common import interleaved_best
from lrcn.nn import ConvLSTM2d

STEPS = 16
SHAPES = [  # B, C, F, H=W, k
    (8, 64, 64, 28, 3),
    (8, 256, 128, 14, 3),
    (4, 1280, 256, 7, 3),
]


def run(quick: bool = False) -> list[dict[str, float | int]]:
    rows = []
    for batch, channels, filters, size, k in SHAPES[:1] if quick else SHAPES:
        torch.manual_seed(0)
        layer = ConvLSTM2d(channels, filters, k, padding="same", return_sequences=True)
        plain = ConvLSTM2d(channels, filters, k, padding="same", return_sequences=True)
        plain.load_state_dict(layer.state_dict())
        plain.cell.fast_gates = False
        conv = torch.nn.Conv2d(channels + filters, 4 * filters, k, padding=k // 2)
        video = torch.randn(batch, STEPS, channels, size, size, requires_grad=True)
        frame = torch.randn(batch, channels + filters, size, size, requires_grad=True)
        x_t = torch.randn(batch, 4 * filters, size, size)
        h = torch.randn(batch, filters, size, size)
        c = torch.randn(batch, filters, size, size)

        def conv_f():
            with torch.no_grad():
                conv(frame)

        def plain_f():
            with torch.no_grad():
                plain(video)

        def layer_f():
            with torch.no_grad():
                layer(video)

        def rec_conv():
            with torch.no_grad():
                layer.cell.recurrent_conv(h)

        def plain_step():
            with torch.no_grad():
                plain.cell.step(x_t, h, c)

        def layer_step():
            with torch.no_grad():
                layer.cell.step(x_t, h, c)

        def conv_fb():
            conv(frame).sum().backward()

        def layer_fb():
            layer(video).sum().backward()

        row: dict[str, float | int] = {"B": batch, "C": channels, "F": filters, "HW": size, "k": k}
        row.update(
            interleaved_best(
                [
                    ("conv_f", conv_f, 10),
                    ("plain_f", plain_f, 3),
                    ("layer_f", layer_f, 3),
                    ("rec_conv", rec_conv, 20),
                    ("plain_step", plain_step, 20),
                    ("layer_step", layer_step, 20),
                    ("conv_fb", conv_fb, 6),
                    ("layer_fb", layer_fb, 2),
                ],
                rounds=3,
            )
        )
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


HEADER = (
    "| B | C | F | H×W | k | Conv2d(C+F→4F) fwd ms | step fwd ms, plain gates | ratio "
    "| step fwd ms, in-place gates | ratio "
    "| gate work fwd, plain | in place "
    "| Conv2d fwd+bwd ms | ConvLSTM step fwd+bwd ms | ratio |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _format_row(r: dict[str, float | int]) -> str:
    plain_f = r["plain_f"] / STEPS
    step_f = r["layer_f"] / STEPS
    step_fb = r["layer_fb"] / STEPS
    gates_plain = (r["plain_step"] - r["rec_conv"]) / r["conv_f"]
    gates = (r["layer_step"] - r["rec_conv"]) / r["conv_f"]
    return (
        f"| {r['B']} | {r['C']} | {r['F']} | {r['HW']}×{r['HW']} | {r['k']} "
        f"| {r['conv_f']:.2f} | {plain_f:.2f} | {plain_f / r['conv_f']:.2f}× "
        f"| {step_f:.2f} | {step_f / r['conv_f']:.2f}× "
        f"| {gates_plain:.1%} | {gates:.1%} "
        f"| {r['conv_fb']:.2f} | {step_fb:.2f} | {step_fb / r['conv_fb']:.2f}× |"
    )


def table(rows: list[dict[str, float | int]]) -> str:
    return "\n".join([HEADER, *(_format_row(r) for r in rows)])
