"""An image index for text search: a folder of photos embedded once by a retrieval run.

The index is a folder (``lrcn-image-index/1``):

* ``index.json``: the format, the run and checkpoint it was built with and the SHA-1 of that
  checkpoint's weights, the embedding width, the image folder, the count;
* ``embeddings.npy``: ``float32 (N, E)``, one unit vector per image (read without pickle);
* ``images.txt``: the N image paths, relative to the image folder, one per line (UTF-8).

A search embeds the sentence with the same run's sentence encoder; an index whose run's weights
changed since (retrained, resumed) is refused, since its vectors live in another space. Scores
are cosines, found with one matrix-vector product (10k images: a few milliseconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrcn.data.features import content_digest
from lrcn.errors import LrcnError

__all__ = [
    "FORMAT",
    "IMAGE_SUFFIXES",
    "Hit",
    "ImageIndex",
    "build_index",
    "list_images",
    "load_index",
    "search_index",
    "top_k",
]

FORMAT = "lrcn-image-index/1"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
META, VECTORS, NAMES = "index.json", "embeddings.npy", "images.txt"


@dataclass(frozen=True)
class ImageIndex:
    """A loaded index: ``vectors float32 (N, E)`` and the images they belong to."""

    folder: Path
    meta: dict[str, Any]
    vectors: np.ndarray  # (N, E), unit rows
    images: list[Path]  # absolute


@dataclass(frozen=True)
class Hit:
    """One found image: its rank (1 = best), cosine score and path."""

    rank: int
    score: float
    image: Path


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root`` (recursively, by suffix), sorted."""
    if not root.is_dir():
        raise LrcnError(root, "not a folder", expected="a folder of photos")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise LrcnError(
            root, "no images in it", expected=f"files ending {' '.join(IMAGE_SUFFIXES)}"
        )
    return found


def build_index(
    run: Path,
    images_dir: Path,
    out: Path,
    which: str = "best",
    batch_size: int = 32,
    on_error: str = "raise",
    log: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Embed every image under ``images_dir`` with ``run``'s image encoder into ``out``.

    An unreadable image stops the index with its name, or under ``on_error="skip"`` is left
    out and listed in ``index.json``'s ``skipped``. Returns index.json's content.
    """
    import torch

    from lrcn.checkpoint import load_bundle, resolve_bundle_dir
    from lrcn.data.video_io import VideoError, read_image
    from lrcn.models.retrieval import RetrievalModel
    from lrcn.tasks._common import resolve_device

    bundle = load_bundle(run, which=which)
    model = bundle.model
    if not isinstance(model, RetrievalModel):
        raise LrcnError(
            run, f"a {bundle.task!r} run has no image embedding", expected="a retrieval run"
        )
    if out.exists() and not (out / META).is_file() and any(out.iterdir()):
        raise LrcnError(out, "a folder that is not an index and not empty", expected="a new folder")
    images = list_images(images_dir)
    device = resolve_device("auto")
    model = model.to(device).eval()
    kept: list[Path] = []
    skipped: list[str] = []
    parts: list[np.ndarray] = []
    log(f"embedding {len(images)} images from {images_dir} with {bundle.path}")
    for first in range(0, len(images), batch_size):
        pixels, names = [], []
        for path in images[first : first + batch_size]:
            try:
                pixels.append(bundle.preprocess.frames_to_tensor(read_image(path)[None])[0])
                names.append(path)
            except VideoError as err:
                if on_error == "raise":
                    raise LrcnError(f"{err}; --skip-bad leaves such images out") from None
                skipped.append(str(err))
        if pixels:
            with torch.inference_mode():
                x = torch.stack(pixels).to(device)  # (B, 3, S, S)
                parts.append(model.encode_images(model.features(x)).float().cpu().numpy())
            kept += names
        if progress is not None:
            progress("images", min(first + batch_size, len(images)), len(images))
    if not kept:
        raise LrcnError(images_dir, "no readable image", expected="photos lrcn can decode")
    vectors = np.concatenate(parts).astype(np.float32)  # (N, E)
    folder = resolve_bundle_dir(run, which)
    meta = {
        "format": FORMAT,
        "run": str(Path(run).resolve()),
        "which": which,
        "weights_sha1": content_digest(folder / "model.safetensors"),
        "model": bundle.config["model"]["name"],
        "images_root": str(images_dir.resolve()),
        "count": len(kept),
        "dim": int(vectors.shape[1]),
        "skipped": skipped,
    }
    if (out / META).is_file():
        log(f"replacing the index in {out}")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / VECTORS, vectors, allow_pickle=False)
    (out / NAMES).write_text(
        "".join(f"{p.relative_to(images_dir).as_posix()}\n" for p in kept), encoding="utf-8"
    )
    (out / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def load_index(folder: Path) -> ImageIndex:
    """An index folder, checked: its format, the vectors' shape against the image list."""
    meta_path = folder / META
    if not folder.is_dir():
        raise LrcnError(folder, "no such index folder", expected="a folder written by lrcn index")
    if not meta_path.is_file():
        raise LrcnError(folder, f"no {META} in it", expected="a folder written by lrcn index")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LrcnError(meta_path, f"not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise LrcnError(meta_path, f"format {found!r}", key="format", expected=repr(FORMAT))
    missing = [key for key in ("run", "images_root", "weights_sha1") if key not in meta]
    if missing:
        raise LrcnError(meta_path, f"no {', '.join(missing)}", expected="what lrcn index writes")
    try:
        vectors = np.load(folder / VECTORS, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise LrcnError(folder / VECTORS, f"not a readable array ({err})") from None
    names = (folder / NAMES).read_text(encoding="utf-8").splitlines() if (
        folder / NAMES
    ).is_file() else []  # fmt: skip
    if vectors.ndim != 2 or vectors.dtype != np.float32 or len(vectors) != len(names):
        raise LrcnError(
            folder / VECTORS,
            f"shape {vectors.shape} {vectors.dtype} for {len(names)} images in {NAMES}",
            expected="float32 (images, dim)",
        )
    root = Path(meta["images_root"])
    return ImageIndex(folder, meta, vectors, [root / n for n in names])


def top_k(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows of ``vectors (N, E)`` for ``query (E,)`` by dot product, best first:
    ``(indices (k,), scores (k,))``. ``argpartition`` finds the k, then only they are sorted."""
    scores = vectors @ query  # (N,)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = part[np.argsort(-scores[part], kind="stable")]
    return order, scores[order]


def search_index(index: ImageIndex, text: str, top: int = 10) -> tuple[list[Hit], list[str]]:
    """The ``top`` images for ``text`` and the query's words the vocabulary lacks."""
    import torch

    from lrcn.checkpoint import load_bundle, resolve_bundle_dir
    from lrcn.models.retrieval import RetrievalExtras, RetrievalModel
    from lrcn.tasks.retrieval import embed_texts, encode_query

    run, which = Path(index.meta["run"]), str(index.meta.get("which", "best"))
    try:
        folder = resolve_bundle_dir(run, which)
    except LrcnError as err:
        raise LrcnError(
            index.folder / META, f"its run cannot be read ({err})", key="run",
            expected="the retrieval run the index was built with, where it was",
        ) from None  # fmt: skip
    if content_digest(folder / "model.safetensors") != index.meta.get("weights_sha1"):
        raise LrcnError(
            index.folder / META,
            f"built with other weights than {folder} holds now",
            expected=f"an index rebuilt with: lrcn index {run} {index.meta['images_root']}",
        )
    bundle = load_bundle(run, which=which)
    assert isinstance(bundle.model, RetrievalModel)
    vocab = bundle.extras_as(RetrievalExtras).vocabulary()
    max_len = int(bundle.config.get("data", {}).get("max_len", 20))
    ids, unknown = encode_query(text, vocab, max_len, "query")
    query = embed_texts(bundle.model, [ids], torch.device("cpu"))[0].numpy()  # (E,)
    rows, scores = top_k(index.vectors, query.astype(np.float32), top)
    hits = [
        Hit(rank, float(score), index.images[int(row)])
        for rank, (row, score) in enumerate(zip(rows, scores, strict=True), start=1)
    ]
    return hits, unknown


def hits_as_json(text: str, hits: Sequence[Hit], unknown: Sequence[str]) -> dict[str, Any]:
    return {
        "query": text,
        "unknown_words": list(unknown),
        "results": [
            {"rank": h.rank, "score": round(h.score, 4), "image": str(h.image)} for h in hits
        ],
    }
