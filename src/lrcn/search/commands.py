"""``lrcn index`` and ``lrcn search``: embed a folder of photos once, then find them by text.

Registered through :mod:`lrcn.commands`; heavy imports stay inside the functions, so listing
the commands costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from lrcn.commands import Help, register_command

__all__ = ["index", "search"]


@register_command("index")
def index(
    run: Annotated[Path, Help("A retrieval run folder (or a bundle).")],
    images: Annotated[Path, Help("Folder of photos, searched recursively.")],
    out: Annotated[Path, Help("Index folder to write.")] = Path("image-index"),
    which: Annotated[str, Help("Checkpoint of the run: best or last.")] = "best",
    skip_bad: Annotated[
        bool, Help("Leave unreadable images out (listed in index.json) instead of stopping.")
    ] = False,
    log: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[str]:
    """Embed a folder of photos with a retrieval run, once, for lrcn search."""
    from lrcn.search.index import build_index

    meta = build_index(
        run, images, out, which, on_error="skip" if skip_bad else "raise", log=log,
        progress=progress,
    )  # fmt: skip
    lines = [f"{out}: {meta['count']} images, {meta['dim']}-dimensional ({meta['model']})"]
    if meta["skipped"]:
        lines.append(f"skipped {len(meta['skipped'])}:\n  " + "\n  ".join(meta["skipped"]))
    lines.append(f'search it: lrcn search {out} "a sentence"')
    return lines


@register_command("search")
def search(
    index_dir: Annotated[Path, Help("An index folder written by lrcn index.")],
    query: Annotated[str, Help("The sentence to search for.")],
    top: Annotated[int, Help("Images to return.", min=1)] = 10,
    json_output: Annotated[bool, Help("Print JSON instead of lines.", flag="--json")] = False,
    html: Annotated[
        Path | None, Help("Also write an HTML page of thumbnails to this file.")
    ] = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Find the images of an index that best match a sentence."""
    from lrcn.search.index import hits_as_json, load_index, search_index

    found = load_index(index_dir)
    hits, unknown = search_index(found, query, top)
    if unknown:
        log(f"words never seen in training (read as <unk>): {', '.join(unknown)}")
    gone = [h.image for h in hits if not h.image.is_file()]
    if gone:
        log(f"warning: {len(gone)} of these images no longer exist, e.g. {gone[0]}; rebuild "
            f"the index: lrcn index {found.meta['run']} {found.meta['images_root']} --out "
            f"{index_dir}")  # fmt: skip
    lines = []
    if html is not None:
        from lrcn.search.page import write_results_page

        write_results_page(html, query, hits, unknown, str(index_dir))
        log(f"page: {html}")
    if json_output:
        return [json.dumps(hits_as_json(query, hits, unknown), indent=1)]
    lines += [f"{h.rank:3d}. {h.score:.3f}  {h.image}" for h in hits]
    return lines
