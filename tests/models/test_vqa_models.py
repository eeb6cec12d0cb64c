"""VQA heads: shapes, attention that sums to 1, padding that changes nothing, and learning."""

import pytest
import torch

from lrcn.models.vqa import (
    DeeperLstmQNormI,
    ImageOnly,
    QuestionOnly,
    ShowAskAttendAnswer,
    soft_target_loss,
)

V, A, D, P = 20, 7, 12, 9  # vocabulary, answers, feature channels, grid positions


def _heads():
    return {
        "deeper_lstm": (DeeperLstmQNormI(D, V, A, 8, 16, 2, 24, 0.0), (D,)),
        "saaa": (ShowAskAttendAnswer(D, V, A, 8, 16, 2, 10, 24, 0.0), (P, D)),
        "question_only": (QuestionOnly(V, A, 8, 16, 24, 0.0), (D,)),
        "image_only": (ImageOnly(D, A, 24, 0.0), (D,)),
    }


@pytest.mark.parametrize("name", ["deeper_lstm", "saaa", "question_only", "image_only"])
def test_logits_per_answer_and_padding_changes_nothing(name):
    torch.manual_seed(0)
    head, shape = _heads()[name]
    head.eval()
    image = torch.randn(3, *shape)
    question = torch.randint(1, V, (3, 6))
    lengths = torch.tensor([6, 4, 2])
    out = head(image, question, lengths)
    assert out.logits.shape == (3, A)
    padded = question.clone()
    padded[1, 4:] = 0
    padded[2, 2:] = 0
    garbage = question.clone()
    garbage[1, 4:] = 5  # what lies past a question's length is never read
    garbage[2, 2:] = 7
    for other in (padded, garbage):
        assert torch.allclose(head(image, other, lengths).logits, out.logits, atol=1e-6)
    alone = head(image[2:], question[2:, :2], lengths[2:]).logits
    assert torch.allclose(alone, out.logits[2:], atol=1e-5)


def test_each_glimpse_is_a_distribution_over_the_grid():
    torch.manual_seed(0)
    head = ShowAskAttendAnswer(D, V, A, 8, 16, 3, 10, 24, 0.0).eval()
    out = head(torch.randn(4, P, D), torch.randint(1, V, (4, 5)), torch.tensor([5, 5, 3, 1]))
    assert out.attention is not None and out.attention.shape == (4, 3, P)
    assert torch.allclose(out.attention.sum(dim=2), torch.ones(4, 3), atol=1e-6)
    assert (out.attention >= 0).all()


def test_soft_targets_loss_is_bce_summed_over_answers():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    targets = torch.tensor([[1.0, 0.3], [0.0, 1.0]])
    expected = (
        torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        .sum(1)
        .mean()
    )
    assert torch.isclose(soft_target_loss(logits, targets), expected)


def test_the_joint_models_learn_what_neither_prior_can():
    """Three objects, each of one of four colours (a grid cell holds an object's identity and
    colour); the question names an
    object and the answer is its colour. The image says which colours are where, the question
    which object: the question alone is at chance (0.25), the image alone can only bet on a
    colour it shows."""
    torch.manual_seed(0)
    n, objects, colours = 600, 3, 4
    scene = torch.randint(0, colours, (n, objects))  # each object's colour
    asked = torch.randint(0, objects, (n,))  # which object the question names
    answer = scene[torch.arange(n), asked]  # (n,)
    kind = torch.eye(objects).expand(n, -1, -1)  # (n, 3, 3): which object a cell holds
    cells = torch.cat([kind, torch.nn.functional.one_hot(scene, colours).float()], dim=2)
    grid = cells + 0.05 * torch.randn_like(cells)  # (n, P=3, C=7)
    image = grid.flatten(1)  # (n, 21) "pooled"
    question = torch.stack([torch.full((n,), 1), asked + 2, torch.full((n,), 6)], dim=1)
    lengths = torch.full((n,), 3)
    targets = torch.nn.functional.one_hot(answer, colours).float()
    results = {}
    heads = {
        "deeper_lstm": (DeeperLstmQNormI(21, 8, colours, 8, 32, 1, 64, 0.0), image),
        "saaa": (ShowAskAttendAnswer(7, 8, colours, 8, 32, 1, 16, 64, 0.0), grid),
        "question_only": (QuestionOnly(8, colours, 8, 32, 64, 0.0), image),
        "image_only": (ImageOnly(21, colours, 64, 0.0), image),
    }
    for name, (head, x) in heads.items():
        optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
        for _ in range(300):
            batch = torch.randint(0, 500, (64,))
            out = head(x[batch], question[batch], lengths[batch])
            loss = soft_target_loss(out.logits, targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        head.eval()
        predicted = head(x[500:], question[500:], lengths[500:]).logits.argmax(1)
        results[name] = float((predicted == answer[500:]).float().mean())
    assert results["question_only"] < 0.4 and results["image_only"] < 0.6, results
    assert results["deeper_lstm"] > 0.85 and results["saaa"] > 0.85, results
