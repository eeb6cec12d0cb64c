"""VQA accuracy exactly as the official evaluation computes it.

Rules and data come from ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` of the VQA API
(github.com/GT-Vision-Lab/VQA, commit a013f00 "Fixed processing answers bug", 2021), re-written
here: papers report that script's numbers, so every quirk that changes a score is kept and named.

A prediction scores ``min(#humans who gave it / 3, 1)``, averaged over the leave-one-out subsets
of the human answers (9 of the 10), after both sides are normalised (``normalize_answer``) -- but
only when the humans disagree (see ``vqa_accuracy``). Scores are in [0, 1]; the official script
reports 100 x the mean, rounded to 2 decimals.

Your own data may have fewer than VQA's ten answers a question (one person, or three), where the
official formula breaks: with one answer, its leave-one-out subset is empty and even the right
answer scores 0. lrcn keeps the rule's meaning there: an answer that at least 30 % of the people
gave (3 of VQA's 10) counts fully, fewer count in proportion, ``min(matches / (0.3 k), 1)`` for
``k != 10`` answers; one answer is then an exact match. Ten answers always get the official
formula.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["VqaScores", "normalize_answer", "soft_scores", "vqa_accuracy", "vqa_scores"]

OFFICIAL_ANSWERS = 10  # human answers per question in VQA v1/v2: the official formula's case
FULL_SHARE = 0.3  # 3 of 10 people: the share of agreeing people that earns full credit

# The official map, verbatim. Its capitalised keys ("Im", "Ive", "Id've", "I'dve") can never match
# because words are lower-cased first, and "somebody'd" -> "somebodyd" runs backwards; both kept.
_CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's",
    "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
# The official ``manualMap``: number words up to ten, and "none" -> "0".
_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
# Removed or turned into a space; periods are handled apart, and ' : $ % & # * ~ | ^ are kept.
_PUNCTUATION = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
    "?", "!",
)  # fmt: skip
# Official: "(?!<=\d)(\.)(?!\d)". Its first group is a look-ahead (a typo for a look-behind) that
# can never hold in front of a ".", so the rule is "a period not followed by a digit". The script
# is Python 2 and compiles without re.UNICODE, so \d means [0-9].
_PERIOD = re.compile(r"\.(?![0-9])")
_DIGIT_COMMA_DIGIT = re.compile(r"[0-9],[0-9]")
# The script passes re.UNICODE (== 32) as the *count* argument of ``sub``: at most 32 periods go.
_MAX_PERIODS = 32


def _clean_whitespace(answer: str) -> str:
    """The step the script applies to every answer: newlines and tabs to spaces, then strip."""
    return answer.replace("\n", " ").replace("\t", " ").strip()


def _process_punctuation(text: str) -> str:
    """The script's ``processPunctuation``.

    A mark is deleted when it touches a space anywhere in ``text`` ("1, 2" -> "1 2") or when
    ``text`` has a comma between digits anywhere ("1,000" -> "1000"; then every mark is deleted);
    otherwise it becomes a space ("hot-dog" -> "hot dog"). The conditions read the input, not
    the text being edited, so the order of the marks does not matter.
    """
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        if delete_all or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_MAX_PERIODS)


def _process_digit_article(text: str) -> str:
    """The script's ``processDigitArticle``: lower-case, split on whitespace, number words to
    digits, drop articles, expand contractions, join with single spaces."""
    words = (_NUMBER_WORDS.get(word, word) for word in text.lower().split())
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def normalize_answer(answer: str) -> str:
    """The official normalisation, all steps: whitespace, punctuation, then digits, articles and
    contractions. ``"The Two dogs."`` -> ``"2 dogs"``; ``"a"`` -> ``""``."""
    return _process_digit_article(_process_punctuation(_clean_whitespace(answer)))


def vqa_accuracy(predicted: str, human_answers: Sequence[str]) -> float:
    """Accuracy of one predicted answer against the human answers (10 in VQA), in [0, 1].

    As the official script does: both sides get newlines/tabs turned into spaces and are stripped;
    then, *only if the stripped human answers are not all identical*, both sides get the full
    ``normalize_answer``. When all humans agree nothing else is done, so against ten "yes" a
    prediction "Yes" or "yes." scores 0 -- predict answers in their normalised form. (Before 2021
    the script always normalised the prediction and only punctuation-processed the humans' answers
    when they disagreed; this follows the current script.) Each human answer is left out in turn,
    the rest give ``min(matches / 3, 1)``, and the results are averaged: 1, 2, 3, 4+ matching
    humans out of 10 score 0.3, 0.6, 0.9, 1. With ``k != 10`` answers (your own data),
    ``min(matches / (0.3 k), 1)``: see the module docstring.
    """
    if not human_answers:
        raise ValueError("no human answers to score against")
    answers = [_clean_whitespace(answer) for answer in human_answers]
    prediction = _clean_whitespace(predicted)
    if len(set(answers)) > 1:
        answers = [_process_digit_article(_process_punctuation(answer)) for answer in answers]
        prediction = _process_digit_article(_process_punctuation(prediction))
    matches = sum(answer == prediction for answer in answers)
    if len(answers) != OFFICIAL_ANSWERS:  # your own data: 30 % of the people count fully
        return min(1.0, matches / (FULL_SHARE * len(answers)))
    # Leaving out answer i leaves ``matches - (answer i matched)`` matches among the others.
    per_subset = [min(1.0, float(matches - (answer == prediction)) / 3) for answer in answers]
    return float(sum(per_subset)) / len(per_subset)


def soft_scores(human_answers: Sequence[str]) -> dict[str, float]:
    """Training targets: normalised answer -> ``min(count / 3, 1)``.

    The usual VQA soft target, a simplification of the leave-one-out accuracy (for 10 answers the
    exact values for 1, 2, 3 matches are 0.3, 0.6, 0.9, not 1/3, 2/3, 1). Answers are always fully
    normalised, so the keys match an answer vocabulary built with ``normalize_answer``; an answer
    that normalises to "" (e.g. "a") is kept as the key "". With ``k != 10`` answers,
    ``min(count / (0.3 k), 1)``, as :func:`vqa_accuracy` scores them.
    """
    counts = Counter(normalize_answer(answer) for answer in human_answers)
    full = 3 if len(human_answers) == OFFICIAL_ANSWERS else FULL_SHARE * len(human_answers)
    return {answer: min(1.0, count / full) for answer, count in counts.items()}


@dataclass
class VqaScores:
    """Mean accuracy in [0, 1] (the official script reports x100), overall and per answer type
    ("yes/no", "number", "other"), with the number of questions behind each mean."""

    overall: float
    per_type: dict[str, float]
    count: int
    per_type_count: dict[str, int]


def vqa_scores(
    predicted: Sequence[str],
    human_answers: Sequence[Sequence[str]],
    answer_types: Sequence[str],
) -> VqaScores:
    """Scores of one predicted answer per question: the mean of ``vqa_accuracy`` over all
    questions and over the questions of each answer type (types sorted by name)."""
    if not len(predicted) == len(human_answers) == len(answer_types):
        raise ValueError(
            f"{len(predicted)} predictions, {len(human_answers)} answer lists and "
            f"{len(answer_types)} answer types: one of each per question"
        )
    if not predicted:
        raise ValueError("no questions to score")
    by_type: dict[str, list[float]] = {}
    accuracies = []
    questions = zip(predicted, human_answers, answer_types, strict=True)
    for prediction, answers, answer_type in questions:
        accuracy = vqa_accuracy(prediction, answers)
        accuracies.append(accuracy)
        by_type.setdefault(answer_type, []).append(accuracy)
    return VqaScores(
        overall=sum(accuracies) / len(accuracies),
        per_type={kind: sum(values) / len(values) for kind, values in sorted(by_type.items())},
        count=len(accuracies),
        per_type_count={kind: len(values) for kind, values in sorted(by_type.items())},
    )
