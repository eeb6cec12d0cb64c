"""Caption metrics with pycocoevalcap, the COCO evaluation code every paper reports.

``full=True`` is the standard protocol: the PTB tokenizer, then BLEU-1..4, METEOR, ROUGE-L and
CIDEr-D (pycocoevalcap's ``Cider`` is the CIDEr-D variant used on the COCO server). Tokenizer
and METEOR run Java. ``full=False`` skips both and scores the captions as given, for the quick
per-epoch validation: lrcn's tokens are already lower-case and free of punctuation.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

__all__ = ["caption_metrics", "caption_metrics_of"]


def caption_metrics(
    references: Mapping[str, Sequence[str]], candidates: Mapping[str, str], full: bool = True
) -> dict[str, float]:
    """Scores of ``candidates`` (image id -> caption) against ``references`` (id -> captions)."""
    return caption_metrics_of(references, {"captions": candidates}, full)["captions"]


def caption_metrics_of(
    references: Mapping[str, Sequence[str]],
    candidate_sets: Mapping[str, Mapping[str, str]],
    full: bool = True,
) -> dict[str, dict[str, float]]:
    """Scores of several sets of candidates (a model's and its baselines') against the same
    ``references``, by set name. With ``full``, Java starts twice in all (one tokenizer run for
    the references and every set's captions, one METEOR process), not three times per set."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    for candidates in candidate_sets.values():
        missing = set(candidates) - set(references)
        if missing:
            raise ValueError(
                f"{len(missing)} captioned images have no references, e.g. {sorted(missing)[:3]}"
            )
        if not candidates:
            raise ValueError("no captions to score")
    ids = sorted({i for candidates in candidate_sets.values() for i in candidates})
    if full:
        if shutil.which("java") is None:
            raise RuntimeError("METEOR and the PTB tokenizer need Java (java not found on PATH)")
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        texts: dict[tuple[str | None, str], list[dict[str, str]]] = {
            **{(None, i): [{"caption": c} for c in references[i]] for i in ids},
            **{(name, i): [{"caption": caption or "."}]
               for name, candidates in candidate_sets.items() for i, caption in candidates.items()},
        }  # fmt: skip
        tokenized = PTBTokenizer().tokenize(texts)
        all_refs = {i: tokenized[(None, i)] for i in ids}
        joined = {key: value for key, value in tokenized.items() if key[0] is not None}
        meteor = Meteor()
    else:
        all_refs = {i: list(references[i]) for i in ids}
        joined = {
            (name, i): [caption or "."]
            for name, candidates in candidate_sets.items() for i, caption in candidates.items()
        }  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for name, candidates in candidate_sets.items():
        keys = sorted(candidates)
        refs = {i: all_refs[i] for i in keys}
        cands = {i: joined[(name, i)] for i in keys}
        scores: dict[str, float] = {}
        bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
        scores.update({f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)})
        scores["rouge_l"] = float(Rouge().compute_score(refs, cands)[0])
        scores["cider"] = float(Cider().compute_score(refs, cands)[0])
        if full:
            scores["meteor"] = float(meteor.compute_score(refs, cands)[0])
        results[name] = scores
    return results
