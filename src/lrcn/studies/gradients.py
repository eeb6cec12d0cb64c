"""Why LSTMs: a vanishing-gradient study of a plain RNN against an LSTM.

The task needs long memory: the first step shows one of K symbols, then come T-1 steps of
distractor symbols, and at the end the model must name the first symbol. Chance is 1/K.

Backpropagation through time multiplies the gradient by one Jacobian per step. In a tanh RNN
that Jacobian is ``diag(1 - h_t²) W_h``; unless the weights are tuned just so, the product
shrinks geometrically with distance and the error at the end cannot reach the first step. The
LSTM's cell carries ``c_t = f_t ⊙ c_{t-1} + ...``: with forget gates near 1 the gradient along
the cell passes almost unchanged, so the first symbol stays learnable.

We measure both sides of that story, for each sequence length T:

* ``‖∂L/∂x_t‖``, the gradient of the loss with respect to each input step, averaged over a
  batch, as a function of the distance ``T-1-t`` from the loss; and
* the accuracy each model reaches after the same training budget.

:func:`run_study` returns plain numbers; :func:`plot_study` draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrcn.nn import LSTM, RNN

Kind = Literal["rnn", "lstm"]
KINDS: tuple[Kind, ...] = ("rnn", "lstm")

__all__ = ["MemoryModel", "StudyConfig", "make_memory_batch", "plot_study", "run_study"]


@dataclass(frozen=True)
class StudyConfig:
    """Settings of the study; the defaults run in under a minute on two CPU cores."""

    lengths: Sequence[int] = (5, 10, 20, 40, 80)
    num_symbols: int = 4  # K symbols to remember; chance accuracy is 1/K
    num_distractors: int = 4  # distinct noise symbols shown after the first step
    hidden_size: int = 32
    batch_size: int = 64
    train_steps: int = 600
    learning_rate: float = 3e-3
    # LSTM forget-gate bias at initialisation. 3 starts the cell with a memory of about
    # 1/(1-σ(3)) ≈ 20 steps (the "chrono" idea of Tallec & Ollivier, 2018); PyTorch's uniform
    # default (σ(0) = 0.5) halves the cell at every step and fails beyond T ≈ 20 here.
    forget_bias: float = 3.0
    eval_size: int = 512
    seed: int = 0
    kinds: Sequence[Kind] = field(default=KINDS)


def make_memory_batch(
    batch: int, length: int, num_symbols: int, num_distractors: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """One batch of the memory task.

    Returns:
        ``x (B, T, K + N)`` one-hot steps (first step: a symbol in 0..K-1; then distractors in
        K..K+N-1) and ``y (B,)`` the first symbol.
    """
    y = torch.randint(num_symbols, (batch,), generator=generator)
    noise = torch.randint(num_distractors, (batch, length - 1), generator=generator) + num_symbols
    tokens = torch.cat([y.unsqueeze(1), noise], dim=1)  # (B, T)
    x = F.one_hot(tokens, num_symbols + num_distractors).float()  # (B, T, K+N)
    return x, y


class MemoryModel(nn.Module):
    """A recurrent layer (``"rnn"`` or ``"lstm"``) and a classifier on its last hidden state."""

    def __init__(
        self,
        kind: Kind,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        if kind == "lstm":
            lstm = LSTM(input_size, hidden_size, batch_first=True)
            if forget_bias is not None:
                with torch.no_grad():  # the gates are stacked (i, f, g, o); both biases add up
                    lstm.get_parameter("bias_ih_l0")[hidden_size : 2 * hidden_size] = forget_bias
                    lstm.get_parameter("bias_hh_l0")[hidden_size : 2 * hidden_size] = 0.0
            self.recurrent: nn.Module = lstm
        elif kind == "rnn":
            self.recurrent = RNN(input_size, hidden_size, batch_first=True)
        else:
            raise ValueError(f"kind must be 'rnn' or 'lstm', got {kind!r}")
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, T, I)`` -> logits ``(B, K)`` read from the last step."""
        out, _ = self.recurrent(x)  # (B, T, H)
        return self.classifier(out[:, -1])  # (B, K)


def gradient_profile(model: MemoryModel, x: Tensor, y: Tensor) -> list[float]:
    """Mean ``‖∂L/∂x_t‖`` per step t of ``x (B, T, I)``, ordered by distance from the loss.

    Element d of the result is the step ``T-1-d``: d = 0 is the last step, d = T-1 the first.
    """
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)  # (B, T, I)
    per_step = grad.norm(dim=2).mean(dim=0)  # (T,)
    return per_step.flip(0).tolist()


def _accuracy(model: MemoryModel, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def train_and_measure(kind: Kind, length: int, config: StudyConfig) -> dict[str, Any]:
    """Train one model on one length; return its accuracy, loss curve and gradient profiles."""
    seed = config.seed * 1000 + length
    torch.manual_seed(seed)
    vocab = config.num_symbols + config.num_distractors
    model = MemoryModel(kind, vocab, config.hidden_size, config.num_symbols, config.forget_bias)
    gen = torch.Generator().manual_seed(seed)
    probe_x, probe_y = make_memory_batch(
        config.eval_size, length, config.num_symbols, config.num_distractors, gen
    )
    grad_init = gradient_profile(model, probe_x, probe_y)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    losses = []
    for _ in range(config.train_steps):
        x, y = make_memory_batch(
            config.batch_size, length, config.num_symbols, config.num_distractors, gen
        )
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return {
        "accuracy": _accuracy(model, probe_x, probe_y),
        "loss": losses,
        "grad_norm_init": grad_init,
        "grad_norm_trained": gradient_profile(model, probe_x, probe_y),
    }


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every kind on every length; return ``{"config", "chance", "results"}``.

    ``results[kind][str(T)]`` holds ``accuracy``, ``loss`` (per step), ``grad_norm_init`` and
    ``grad_norm_trained`` (per distance from the loss, see :func:`gradient_profile`).
    """
    config = config or StudyConfig()
    results: dict[str, dict[str, Any]] = {kind: {} for kind in config.kinds}
    for length in config.lengths:
        for kind in config.kinds:
            if progress is not None:
                progress(f"{kind.upper()} T={length}")
            results[kind][str(length)] = train_and_measure(kind, length, config)
    return {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "chance": 1.0 / config.num_symbols,
        "results": results,
    }


_COLORS = {"rnn": "tab:red", "lstm": "tab:blue"}


def plot_study(study: dict[str, Any]) -> Any:
    """Two panels: gradient norm vs distance (longest T), and accuracy vs T. Returns a Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = study["results"]
    kinds = list(results)
    lengths = sorted(int(t) for t in results[kinds[0]])
    longest = str(lengths[-1])
    fig, (ax_grad, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)

    # Each curve is divided by its value at the last step: a trained model's loss is near 0, so
    # its raw gradients are small everywhere; what matters is how they fall with distance.
    for kind in kinds:
        r = results[kind][longest]
        for key, style, label in (
            ("grad_norm_trained", "-", "trained"),
            ("grad_norm_init", "--", "at initialisation"),
        ):
            profile = r[key]
            relative = [g / profile[0] for g in profile]
            ax_grad.semilogy(
                range(len(relative)), relative, color=_COLORS[kind], linestyle=style,
                alpha=1.0 if style == "-" else 0.6, label=f"{kind.upper()} {label}",
            )  # fmt: skip
    ax_grad.set_xlabel("distance from the loss (time steps back)")
    ax_grad.set_ylabel("‖∂L/∂x_t‖ relative to the last step (log scale)")
    ax_grad.set_title(f"Gradient reaching each input step, T = {longest}")
    ax_grad.grid(True, which="both", alpha=0.3)
    ax_grad.legend()

    for kind in kinds:
        acc = [results[kind][str(t)]["accuracy"] for t in lengths]
        ax_acc.plot(lengths, acc, marker="o", color=_COLORS[kind], label=kind.upper())
    ax_acc.axhline(study["chance"], color="gray", linestyle=":", label="chance")
    ax_acc.set_xscale("log", base=2)
    ax_acc.set_xticks(lengths, [str(t) for t in lengths])
    ax_acc.set_ylim(0, 1.05)
    ax_acc.set_xlabel("sequence length T (steps between the symbol and the question)")
    ax_acc.set_ylabel("accuracy recalling the first symbol")
    steps = study["config"]["train_steps"]
    ax_acc.set_title(f"Accuracy after {steps} training steps")
    ax_acc.grid(True, alpha=0.3)
    ax_acc.legend()
    fig.suptitle("Vanishing gradients: a tanh RNN forgets, an LSTM remembers")
    return fig


def summary_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per length: each kind's accuracy and its first-step gradient relative to the last."""
    rows = []
    results = study["results"]
    for length in sorted(int(t) for t in next(iter(results.values()))):
        row: dict[str, Any] = {"T": length}
        for kind, by_length in results.items():
            r = by_length[str(length)]
            profile = r["grad_norm_trained"]
            row[f"{kind}_accuracy"] = r["accuracy"]
            row[f"{kind}_first_step_gradient"] = profile[-1] / profile[0]
        rows.append(row)
    return rows


def write_study(study: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Save the study as ``gradients.json`` and its plot as ``gradients.png`` in ``out_dir``."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "gradients.json"
    json_path.write_text(json.dumps(study, indent=1))
    png_path = out_dir / "gradients.png"
    fig = plot_study(study)
    fig.savefig(png_path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return png_path, json_path
