"""Next-frame prediction: training sequences/s of the ConvLSTM models on 64x64 Moving MNIST
frames, 10 in and 10 out, with and without patch reshaping.

One training step (forward with scheduled-sampling masks, MSE, backward, Adam) on a batch of
16 random sequences; sequences/s = 16 / best step time. The baseline is the
encoder-forecaster without patch reshaping (patch 1: ConvLSTMs on the 64x64 pixel grid);
patch 4 folds 4x4 pixels into 16 channels (a 16x16 grid), patch 8 into 64 (8x8), as OpenSTL
does. The same filters ([64, 64], 3x3) throughout, so the rows differ only in the grid.
"""

from __future__ import annotations

import os

import torch

from common import interleaved_best
from lrcn.models import create_model

BATCH, CONTEXT, HORIZON, SIZE = 16, 10, 10, 64

Row = dict[str, float | str]

HEADER = (
    f"Next-frame training on {SIZE}x{SIZE} frames, {CONTEXT} in and {HORIZON} out, batch "
    f"{BATCH}, filters [64, 64] 3x3: one step (forward with scheduled-sampling masks, MSE, "
    "backward, Adam), best of interleaved rounds; sequences/s and speed against the "
    "encoder-forecaster without patch reshaping (patch 1, the 64x64 grid)."
)


def _step(name: str, patch: int) -> object:
    torch.manual_seed(0)
    model = create_model(
        name, channels=1, frame_size=SIZE, filters=[64, 64], kernel_size=3, patch_size=patch
    ).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = torch.rand(BATCH, CONTEXT + HORIZON, 1, SIZE, SIZE)
    teacher = torch.rand(BATCH, HORIZON - 1) < 0.5

    def step() -> None:
        output = model(frames[:, :CONTEXT], HORIZON, frames[:, CONTEXT:], teacher)
        loss = (output.frames - frames[:, CONTEXT:]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run(quick: bool = False) -> list[Row]:
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    grid = [
        ("convlstm_encoder_forecaster", 1),
        ("convlstm_encoder_forecaster", 4),
        ("convlstm_encoder_forecaster", 8),
        ("convlstm", 4),
        ("convlstm", 8),
    ]
    if quick:
        grid = grid[1:3]
    candidates = [(f"{name} patch {p}", _step(name, p), 1 if p == 1 else 2) for name, p in grid]
    best = interleaved_best(candidates, rounds=1 if quick else 2)
    base = best[candidates[0][0]]
    rows: list[Row] = []
    for (name, patch), (label, _, _) in zip(grid, candidates, strict=True):
        ms = best[label]
        rows.append(
            {
                "model": name,
                "patch": patch,
                "grid": f"{SIZE // patch}×{SIZE // patch}×{patch * patch}",
                "ms": ms,
                "seq_s": BATCH / (ms / 1e3),
                "speed": base / ms,
                "load": load,
            }
        )
        print(_format(rows[-1]), flush=True)
    return rows


def _format(r: Row) -> str:
    return (
        f"| `{r['model']}` | {r['patch']} | {r['grid']} | {float(r['ms']):.0f} | "
        f"{float(r['seq_s']):.1f} | {float(r['speed']):.1f}× |"
    )


def table(rows: list[Row]) -> str:
    return "\n".join(
        [
            f"1-minute load average at the start: {float(rows[0]['load']):.1f}",
            "",
            "| model | patch | grid (h×w×channels) | ms per step | training sequences/s | "
            "vs patch 1 |",
            "|---|---:|---|---:|---:|---:|",
            *(_format(r) for r in rows),
        ]
    )
