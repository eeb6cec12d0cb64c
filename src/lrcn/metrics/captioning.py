"""Caption metrics with pycocoevalcap, the COCO evaluation code every paper reports.

``full=True`` is the standard protocol: the PTB tokenizer, then BLEU-1..4, METEOR, ROUGE-L and
CIDEr-D (pycocoevalcap's ``Cider`` is the CIDEr-D variant used on the COCO server). Tokenizer
and METEOR run Java. ``full=False`` skips both and scores the captions as given, for the quick
per-epoch validation: lrcn's tokens are already lower-case and free of punctuation.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

__all__ = ["caption_metrics"]


def caption_metrics(
    references: Mapping[str, Sequence[str]], candidates: Mapping[str, str], full: bool = True
) -> dict[str, float]:
    """Scores of ``candidates`` (image id -> caption) against ``references`` (id -> captions)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    missing = set(candidates) - set(references)
    if missing:
        raise ValueError(
            f"{len(missing)} captioned images have no references, e.g. {sorted(missing)[:3]}"
        )
    if not candidates:
        raise ValueError("no captions to score")
    ids = sorted(candidates)
    if full:
        if shutil.which("java") is None:
            raise RuntimeError("METEOR and the PTB tokenizer need Java (java not found on PATH)")
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tokenizer = PTBTokenizer()
        refs = tokenizer.tokenize({i: [{"caption": c} for c in references[i]] for i in ids})
        cands = tokenizer.tokenize({i: [{"caption": candidates[i] or "."}] for i in ids})
    else:
        refs = {i: list(references[i]) for i in ids}
        cands = {i: [candidates[i] or "."] for i in ids}
    scores: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    scores.update({f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)})
    scores["rouge_l"] = float(Rouge().compute_score(refs, cands)[0])
    scores["cider"] = float(Cider().compute_score(refs, cands)[0])
    if full:
        meteor = Meteor()
        scores["meteor"] = float(meteor.compute_score(refs, cands)[0])
    return scores
