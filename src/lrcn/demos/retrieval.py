"""``lrcn demo retrieval``: find built-in images by a sentence, and sentences by an image.

Writes the captioning demo's shapes data set (Flickr8k layout, five sentences an image), trains
the VSE++ joint embedding with both losses (hardest negative, sum of hinges) on cached
EfficientNet-Lite0 features, trains a Show-and-Tell captioner for the LRCN paper's generative
retrieval (sentences ranked by their likelihood under it, no other training), scores all three
on the test split in both directions beside random ranking, then indexes the image folder and
searches it, writing the result page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["retrieval_demo", "run_retrieval_demo"]

QUERY = "a red circle on the left"


def _configs(data: Path, epochs: int) -> dict[str, dict[str, Any]]:
    shared = {
        "data": {"format": "flickr8k", "root": str(data), "min_count": 1, "num_workers": 0},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.002, "device": "auto",
                  "feature_cache": str(data.parent / "features")},
    }  # fmt: skip
    vse = {"backbone": "efficientnet_lite0", "image_size": 128, "embed_size": 64,
           "hidden_size": 256, "joint_size": 256, "margin": 0.2}  # fmt: skip
    return {
        "vse_max_hinge": {"task": "retrieval", **shared,
                          "model": {"name": "vse", **vse, "loss": "max_hinge"}},
        "vse_sum_hinge": {"task": "retrieval", **shared,
                          "model": {"name": "vse", **vse, "loss": "sum_hinge"}},
        "show_and_tell": {"task": "captioning", **shared,
                          "model": {"name": "show_and_tell", "backbone": "efficientnet_lite0",
                                    "image_size": 128, "embed_size": 64, "hidden_size": 256,
                                    "dropout": 0.2},
                          "decode": {"beam_size": 1, "max_len": 20}},
    }  # fmt: skip


def run_retrieval_demo(
    out: Path, epochs: int = 15, images: int = 600, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole retrieval demo into ``out``; return each model's test scores and a search."""
    from lrcn.data.synthetic import write_shapes_flickr8k
    from lrcn.search.index import build_index, load_index, search_index
    from lrcn.search.page import write_results_page
    from lrcn.tasks import evaluate_run, train, validate_config

    out = Path(out)
    data = out / "data" / "flickr"
    if not (data / "Flickr8k_text" / "Flickr_8k.testImages.txt").is_file():
        log(f"writing the shapes data set (Flickr8k layout, {images} images) to {data}")
        write_shapes_flickr8k(data, num_images=images)
    results: dict[str, Any] = {"models": {}}
    for name, raw in _configs(data, epochs).items():
        path = out / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        run = out / "runs" / name
        if (run / "best").exists():
            log(f"reusing the trained run in {run}")
        else:
            log(f"training {name} ({path})")
            train(validate_config(raw, source=str(path)), run, log=log)
        options = {"retrieval": True} if raw["task"] == "captioning" else {}
        _, metrics = evaluate_run(run, options=options, log=log)
        results["models"][name] = metrics.get("retrieval", metrics)
    index = out / "index"
    if not (index / "index.json").is_file():
        build_index(out / "runs" / "vse_max_hinge", data / "Flicker8k_Dataset", index, log=log)
    hits, unknown = search_index(load_index(index), QUERY, top=8)
    page = write_results_page(out / "search.html", QUERY, hits, unknown, str(index))
    results["search"] = {"query": QUERY, "hits": hits, "page": str(page)}
    return results


def results_table(results: dict[str, Any]) -> str:
    """Each model and random ranking, both directions, as a Markdown table."""
    head = (
        "| ranked by | text→image R@1 | R@5 | R@10 | median rank | image→text R@1 | R@5 | R@10 "
        "| median rank |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]

    def row(label: str, scores: dict[str, Any]) -> str:
        cells = [
            f"{scores[d][k]:.1f}"
            for d in ("text_to_image", "image_to_text")
            for k in ("R@1", "R@5", "R@10", "median_rank")
        ]
        return f"| {label} | " + " | ".join(cells) + " |"

    names = {
        "vse_max_hinge": "VSE++ joint embedding (hardest negative)",
        "vse_sum_hinge": "joint embedding, sum of hinges",
        "show_and_tell": "Show-and-Tell likelihood (generative, LRCN paper)",
    }
    chance = None
    for name, scores in results["models"].items():
        rows.append(row(names.get(name, name), scores))
        chance = scores["random_ranking"]
    if chance is not None:
        rows.append(row("random ranking (expected)", chance))
    return "\n".join(rows)


@register_demo("retrieval")
def retrieval_demo(
    out: Annotated[Path, Help("Folder for the data, configs, runs, index and page.")] = Path(
        "runs/demo-retrieval"
    ),
    epochs: Annotated[int, Help("Training epochs per model.", min=1)] = 15,
    images: Annotated[int, Help("Images in the built-in data set.", min=40)] = 600,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Text-to-image retrieval on built-in images: joint embeddings and a captioner ranking."""
    results = run_retrieval_demo(out, epochs=epochs, images=images, log=log)
    first = next(iter(results["models"].values()))
    search = results["search"]
    return [
        f"Shapes (Flickr8k layout), test split: {first['images']} images, {first['texts']} "
        "sentences; best/ chosen on validation (R-sum, or CIDEr-D for the captioner).\n",
        results_table(results),
        f'\nlrcn search {out / "index"} "{search["query"]}":',
        *(f"  {h.rank}. {h.score:.3f}  {h.image.name}" for h in search["hits"]),
        f"page: {search['page']}",
    ]
