"""Caption tokenisation and the vocabulary, stored whole in a checkpoint bundle.

The vocabulary travels inside the bundle (``to_dict``/``from_dict``) with a fingerprint of its
words, so ``predict`` needs no extra file and a vocabulary rebuilt from other captions can
never silently mismatch the weights: loading checks the fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0, 1, 2, 3
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

__all__ = ["END", "PAD", "SPECIALS", "START", "UNK", "Vocabulary", "tokenize"]


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, apostrophes kept inside words: ``"A dog's toy."`` ->
    ``["a", "dog's", "toy"]``. Punctuation is dropped, as in the Karpathy split files."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Words <-> ids, with ``<pad> <start> <end> <unk>`` as ids 0-3."""

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {words[:4]}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary lists each word once")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, captions: Iterable[Sequence[str]], min_count: int = 5) -> Vocabulary:
        """Every token seen at least ``min_count`` times, most frequent first (ties: a-z)."""
        counts = Counter(token for caption in captions for token in caption)
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))  # fmt: skip
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: Sequence[str], add_start_end: bool = True) -> list[int]:
        """Tokens -> ids (unknown words -> ``<unk>``), framed by ``<start>``/``<end>``."""
        ids = [self.index.get(t, self.unk_id) for t in tokens]
        return [self.start_id, *ids, self.end_id] if add_start_end else ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words, stopping at ``<end>`` and skipping ``<start>``/``<pad>``."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.start_id, self.pad_id):
                continue
            words.append(self.words[i] if 0 <= i < len(self.words) else UNK)
        return words

    def fingerprint(self) -> str:
        return hashlib.sha1("\n".join(self.words).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words, "fingerprint": self.fingerprint()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild a stored vocabulary; refuse one whose words do not match its fingerprint."""
        vocab = cls(data["words"])
        if data.get("fingerprint") != vocab.fingerprint():
            raise ValueError(
                "the stored vocabulary does not match its fingerprint: it was edited or "
                "belongs to other weights"
            )
        return vocab
