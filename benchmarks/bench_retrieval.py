"""Text-to-image search: latency of one query over an image index of 10k (and 100k) images.

The index holds generated unit vectors (1024 wide, as configs/flickr30k_vse.yaml embeds); the
query is a 10-word sentence encoded by the VSE++ sentence encoder at that config's sizes.

* Baseline: brute force as a script would write it with numpy: normalise every index row and
  the query, take all cosines, sort them all (``np.argsort``), keep the top 10.
* lrcn: ``lrcn.search.index.top_k`` on the stored unit rows: one matrix-vector product, then
  ``argpartition`` for the 10 and a sort of only those. Same 10 images asserted.
* The sentence encoder's time for one query, and the whole query (encode + top 10), which is
  what ``lrcn search`` spends after loading.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from common import best_ms
from lrcn.backbones import create_backbone
from lrcn.models import create_model
from lrcn.search.index import top_k

DIM, TOP, WORDS, VOCAB = 1024, 10, 10, 10_000

Row = dict[str, float | str]

HEADER = (
    f"Text-to-image search: one query against an index of generated unit vectors ({DIM} wide, "
    "as `configs/flickr30k_vse.yaml` embeds), top 10. The baseline is brute force as a numpy "
    "script writes it (normalise every row and the query, all cosines, `np.argsort` of all, "
    "keep 10); `lrcn.search.index.top_k` uses the stored unit rows, one matrix-vector product "
    "and `argpartition` (same 10 images, asserted). The sentence row encodes a 10-word query "
    "with the VSE++ LSTM at that config's sizes (embedding 300, hidden 1024); the last row is "
    "encode + top 10 on the 10k index: what `lrcn search` spends per query after loading. Best "
    "of 20 runs each."
)


def _index(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((n, DIM)).astype(np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def _brute_force(index: np.ndarray, query: np.ndarray) -> np.ndarray:
    rows = index / np.linalg.norm(index, axis=1, keepdims=True)
    scores = rows @ (query / np.linalg.norm(query))
    return np.argsort(-scores)[:TOP]


def run(quick: bool = False) -> list[Row]:
    repeats = 3 if quick else 20
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    rows: list[Row] = []
    query = _index(1)[0]
    for n in (10_000, 100_000):
        index = _index(n)
        fast, _ = top_k(index, query, TOP)
        if not np.array_equal(fast, _brute_force(index, query)):
            raise AssertionError("top_k and brute force disagree")
        slow_ms = best_ms(lambda i=index: _brute_force(i, query), repeats)
        fast_ms = best_ms(lambda i=index: top_k(i, query, TOP), repeats)
        rows += [
            {"what": f"{n:,} images, numpy brute force (baseline)", "ms": slow_ms, "ratio": 1.0},
            {"what": f"{n:,} images, lrcn `top_k`", "ms": fast_ms, "ratio": slow_ms / fast_ms},
        ]
    model = create_model(
        "vse", backbone=create_backbone("simple_cnn"), vocab_size=VOCAB, embed_size=300,
        hidden_size=1024, joint_size=DIM,
    ).eval()  # fmt: skip
    ids, lengths = torch.randint(4, VOCAB, (1, WORDS)), torch.tensor([WORDS])

    def encode() -> np.ndarray:
        with torch.inference_mode():
            return model.encode_texts(ids, lengths)[0].numpy()

    index = _index(10_000)
    encode_ms = best_ms(encode, repeats)
    whole_ms = best_ms(lambda: top_k(index, encode(), TOP), repeats)
    rows += [
        {"what": f"encode the {WORDS}-word query (LSTM 1024)", "ms": encode_ms},
        {"what": "one query, 10,000 images: encode + top 10", "ms": whole_ms},
    ]
    for r in rows:
        r["load"] = load
        print(_format(r), flush=True)
    return rows


def _format(r: Row) -> str:
    ratio = f"{float(r['ratio']):.1f}×" if "ratio" in r else ""
    return f"| {r['what']} | {float(r['ms']):.2f} | {ratio} |"


def table(rows: list[Row]) -> str:
    return "\n".join(
        [
            f"1-minute load average at the start: {float(rows[0]['load']):.1f}",
            "",
            "| search | ms | vs baseline |",
            "|---|---:|---:|",
            *(_format(r) for r in rows),
        ]
    )
