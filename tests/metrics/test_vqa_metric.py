"""VQA accuracy: hand-worked leave-one-out sums and the official vqaEval.py normalisation rules."""

import pytest

from lrcn.metrics.vqa import VqaScores, normalize_answer, soft_scores, vqa_accuracy, vqa_scores


def humans(matching: int, answer: str = "dog", other: str = "cat") -> list[str]:
    """Ten human answers, ``matching`` of them ``answer`` and the rest ``other``."""
    return [answer] * matching + [other] * (10 - matching)


@pytest.mark.parametrize(
    ("matching", "expected"),
    [
        # no subset has a match
        (0, 0.0),
        # leaving out the match (1 subset): 0 left -> 0; the 9 others keep it: 1/3
        (1, (1 * 0 + 9 * (1 / 3)) / 10),
        # leaving out a match (2 subsets): 1 left -> 1/3; the 8 others: 2 -> 2/3
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),
        # leaving out a match (3 subsets): 2 left -> 2/3; the 7 others: 3 -> 1
        (3, (3 * (2 / 3) + 7 * 1) / 10),
        # every subset keeps at least 3 matches -> 1
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_leave_one_out_accuracy_worked_by_hand(matching, expected):
    assert vqa_accuracy("dog", humans(matching)) == pytest.approx(expected)


def test_the_worked_values_are_the_well_known_steps():
    # (2/3 + 16/3) / 10 = 18/30 = 0.6; (2 + 7) / 10 = 0.9; 3/10 = 0.3
    assert [vqa_accuracy("dog", humans(m)) for m in range(5)] == pytest.approx(
        [0, 0.3, 0.6, 0.9, 1]
    )


def test_fewer_than_ten_answers_count_fully_when_30_percent_agree():
    # The official leave-one-out would score the one right answer of a one-answer question 0.
    assert vqa_accuracy("green", ["green"]) == 1.0
    assert vqa_accuracy("red", ["green"]) == 0.0
    # 3 answers: 0.9 people earn full credit, so one agreeing person is enough
    assert vqa_accuracy("dog", ["dog", "cat", "cat"]) == 1.0
    # 5 answers: full credit from 1.5 people; one agreeing person gets 1 / 1.5
    assert vqa_accuracy("dog", ["dog", "cat", "cat", "cat", "cat"]) == pytest.approx(2 / 3)
    assert vqa_accuracy("dog", ["dog", "Dog!", "cat", "cat", "cat"]) == 1.0  # normalised
    assert soft_scores(["green"]) == {"green": 1.0}
    assert soft_scores(["dog", "cat", "cat", "cat", "cat"]) == pytest.approx(
        {"dog": 2 / 3, "cat": 1.0}
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),  # lower-cased, then the manual number map
        ("none", "0"),  # the official manualMap has "none": "0"
        ("zero", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),  # the map stops at ten
        ("the dog", "dog"),  # articles a/an/the are dropped
        ("An apple", "apple"),
        ("a", ""),  # an answer that is only an article vanishes
        ("dont", "don't"),  # contractions map
        ("youre", "you're"),
        ("couldnt've", "couldn't've"),
        ("Im", "im"),  # the map's capitalised keys ("Im") never match after lower-casing
        ("somebody'd", "somebodyd"),  # the official entry runs backwards; kept
        ("yes.", "yes"),  # a period not followed by a digit goes
        ("5.", "5"),
        ("e.g.", "eg"),
        ("3.5", "3.5"),  # a period followed by a digit stays
        (".5", ".5"),
        ("1,000", "1000"),  # a comma between digits: every mark is deleted, not spaced
        ("1,000-2,000", "10002000"),
        ("1, 2", "1 2"),  # a mark next to a space is deleted
        ("red,white", "red white"),  # otherwise a mark becomes a space
        ("hot-dog", "hot dog"),
        ("t-shirt", "t shirt"),
        ("hot - dog", "hot dog"),  # " -" occurs, so "-" is deleted; the spaces collapse
        ("yes!", "yes"),
        ("what?!", "what"),
        ("(left)", "left"),
        ("$5", "$5"),  # $ ' : are not in the official list
        ("3:00", "3:00"),
        ("rock'n'roll", "rock'n'roll"),
        (" \tThe  Two\ndogs. ", "2 dogs"),  # newline/tab -> space, strip, single spaces
        ("", ""),
    ],
)
def test_normalize_answer_follows_the_official_rules(raw, expected):
    assert normalize_answer(raw) == expected


def test_at_most_32_periods_are_removed():
    # the script passes re.UNICODE (== 32) where ``sub`` takes its count
    assert normalize_answer("." * 33) == "."
    assert normalize_answer("." * 32) == ""


def test_both_sides_are_normalised_when_the_humans_disagree():
    answers = ["Two", "2", "two.", "3", "three", "3", "4", "four", "4", "the 4"]
    # normalised: 2 x3, 3 x3, 4 x4 -> "2" scores 0.9 and so does "Two." as a prediction
    assert vqa_accuracy("2", answers) == pytest.approx(0.9)
    assert vqa_accuracy("Two.", answers) == pytest.approx(0.9)
    assert vqa_accuracy("  the FOUR\n", answers) == 1.0


def test_nothing_but_whitespace_is_normalised_when_the_humans_agree():
    # the official script skips normalisation when all (stripped) human answers are equal
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0
    assert vqa_accuracy("yes", ["yes ", "\tyes"] + ["yes"] * 8) == 1.0
    assert vqa_accuracy("Yes", ["yes"] * 10) == 0.0
    assert vqa_accuracy("yes.", ["yes"] * 10) == 0.0
    # one disagreeing human switches normalisation on: 9 "yes" after it -> 1
    assert vqa_accuracy("Yes", ["yes"] * 9 + ["no"]) == 1.0


def test_empty_prediction_scores_zero_and_no_answers_are_refused():
    assert vqa_accuracy("", humans(3)) == 0.0
    assert vqa_accuracy("   ", humans(3)) == 0.0
    with pytest.raises(ValueError, match="no human answers"):
        vqa_accuracy("dog", [])


def test_soft_scores_are_capped_counts_over_three_of_normalised_answers():
    answers = ["Two", "2", "two", "2.", "3", "three", "the dog", "Dog", "cat", "a"]
    assert soft_scores(answers) == pytest.approx(
        {"2": 1.0, "3": 2 / 3, "dog": 2 / 3, "cat": 1 / 3, "": 1 / 3}
    )
    assert soft_scores([]) == {}


def test_vqa_scores_aggregate_per_answer_type():
    scores = vqa_scores(
        ["yes", "no", "2", "dog"],
        [["yes"] * 10, ["yes"] * 10, ["2", "2", "3"] + ["4"] * 7, humans(3)],
        ["yes/no", "yes/no", "number", "other"],
    )
    # per question: 1, 0, 0.6 (2 matches of 10), 0.9 (3 matches)
    assert isinstance(scores, VqaScores)
    assert scores.overall == pytest.approx((1 + 0 + 0.6 + 0.9) / 4)
    assert scores.per_type == pytest.approx({"number": 0.6, "other": 0.9, "yes/no": 0.5})
    assert list(scores.per_type) == ["number", "other", "yes/no"]
    assert scores.count == 4
    assert scores.per_type_count == {"number": 1, "other": 1, "yes/no": 2}


def test_vqa_scores_refuse_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="one of each per question"):
        vqa_scores(["yes"], [["yes"] * 10, ["no"] * 10], ["yes/no", "yes/no"])
    with pytest.raises(ValueError, match="no questions"):
        vqa_scores([], [], [])
