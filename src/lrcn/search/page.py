"""A search result as one self-contained HTML page: the query, then the found images as
thumbnails (embedded as data URLs, so the file can be mailed or opened anywhere) with rank,
score and file name. Plain HTML and CSS, no script; a grid that reflows to a phone's width."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from lrcn.search.index import Hit

__all__ = ["thumbnail_data_url", "write_results_page"]

_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
header { padding: 16px 20px; background: #1f2933; color: #fff; }
header h1 { font-size: 18px; margin: 0 0 4px; font-weight: 600; }
header p { margin: 0; color: #cbd2d9; font-size: 13px; }
.note { margin: 12px 20px 0; padding: 8px 12px; background: #fff4d6; border-radius: 6px; }
main { display: grid; gap: 14px; padding: 16px 20px;
       grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
figure { margin: 0; background: #fff; border-radius: 8px; overflow: hidden;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
figure img { width: 100%; aspect-ratio: 1; object-fit: cover; display: block; }
figcaption { padding: 8px 10px; font-size: 13px; }
.rank { font-weight: 600; }
.bar { height: 6px; background: #e4e7eb; border-radius: 3px; margin: 6px 0; }
.bar span { display: block; height: 100%; background: #3e7cb1; border-radius: 3px; }
.name { color: #616e7c; word-break: break-all; }
.gone { aspect-ratio: 1; display: flex; align-items: center; justify-content: center;
        background: #e4e7eb; color: #616e7c; font-size: 13px; text-align: center; }
"""


def thumbnail_data_url(path: Path, size: int = 240) -> str | None:
    """A JPEG thumbnail of ``path`` (longest side ``size``) as a ``data:`` URL; None when the
    file is gone or no longer a readable image (the page says so in its place)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_results_page(
    out: Path, query: str, hits: Sequence[Hit], unknown: Sequence[str], index_name: str
) -> Path:
    """Write the page for ``hits`` of ``query`` to ``out``; return ``out``."""
    esc = html.escape
    best = max((h.score for h in hits), default=1.0)
    cards = []
    for hit in hits:
        # Bars are the cosine as a share of the best one's, from 0: near-equal scores look
        # near-equal (a bar scaled between the lowest and highest shown would not).
        width = 100 * max(hit.score, 0.0) / max(best, 1e-6)
        url = thumbnail_data_url(hit.image) if hit.image.is_file() else None
        picture = (
            f'<img src="{url}" alt="{esc(hit.image.name)}">'
            if url is not None
            else '<div class="gone">missing or unreadable since it was indexed</div>'
        )
        cards.append(
            f"<figure>{picture}"
            f'<figcaption><span class="rank">#{hit.rank}</span> score {hit.score:.3f}'
            f'<div class="bar"><span style="width:{width:.0f}%"></span></div>'
            f'<div class="name">{esc(hit.image.name)}</div></figcaption></figure>'
        )
    note = (
        f'<p class="note">Words never seen in training, read as unknown: '
        f"{esc(', '.join(unknown))}</p>"
        if unknown
        else ""
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(query)} - lrcn search</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{esc(query)}</h1><p>{len(hits)} best images in {esc(index_name)}, "
        "by cosine score (lrcn search)</p></header>"
        f"{note}<main>{''.join(cards)}</main></body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
