"""Caption metrics: several candidate sets scored in one pass equal each set scored alone."""

import pytest

from lrcn.metrics.captioning import caption_metrics, caption_metrics_of

REFERENCES = {
    "0": ["a red circle moves to the left", "the red disc slides left"],
    "1": ["a blue square moves up", "there is a blue box moving upwards"],
    "2": ["a green triangle slides down", "the green wedge moves towards the bottom"],
}
SETS = {
    "model": {"0": "a red circle moves left", "1": "a blue box moves up", "2": "a green wedge"},
    "same": {"0": "a red circle", "1": "a red circle", "2": "a red circle"},
    "empty": {"0": "", "1": "a blue square moves up", "2": "the green wedge moves down"},
}


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_scoring_sets_together_equals_scoring_each_alone(full):
    together = caption_metrics_of(REFERENCES, SETS, full=full)
    assert list(together) == list(SETS)
    for name, candidates in SETS.items():
        assert together[name] == caption_metrics(REFERENCES, candidates, full=full), name
    assert together["model"]["cider"] > together["same"]["cider"]  # the metric discriminates


def test_captions_without_references_and_empty_sets_are_refused():
    with pytest.raises(ValueError, match="have no references"):
        caption_metrics_of(REFERENCES, {"x": {"9": "a cat"}}, full=False)
    with pytest.raises(ValueError, match="no captions"):
        caption_metrics_of(REFERENCES, {"x": {}}, full=False)
