"""Tokenisation and the vocabulary."""

import pytest

from lrcn.data.vocab import SPECIALS, Vocabulary, tokenize


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A dog's red ball, on the GRASS!") == [
        "a",
        "dog's",
        "red",
        "ball",
        "on",
        "the",
        "grass",
    ]
    assert tokenize("Two  dogs -- 3 cats.") == ["two", "dogs", "3", "cats"]
    assert tokenize("...") == []


def test_build_keeps_frequent_words_and_specials_first():
    captions = [["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]]
    vocab = Vocabulary.build(captions, min_count=2)
    assert vocab.words == [*SPECIALS, "a", "dog"]
    ids = vocab.encode(["a", "cat"])
    assert ids == [vocab.start_id, 4, vocab.unk_id, vocab.end_id]
    assert vocab.decode([*ids, 5, 5]) == ["a", "<unk>"]  # stops at <end>


def test_round_trip_and_fingerprint_check():
    vocab = Vocabulary.build([["x", "y"]], min_count=1)
    data = vocab.to_dict()
    assert Vocabulary.from_dict(data).words == vocab.words
    data["words"] = [*data["words"], "z"]
    with pytest.raises(ValueError, match="does not match its fingerprint"):
        Vocabulary.from_dict(data)
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(["a", "b"])
