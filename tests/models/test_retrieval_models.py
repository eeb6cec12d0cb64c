"""Retrieval (VSE++): the hinge loss against a plain loop, hardest negatives, same-image pairs,
unit-norm encoders that ignore padding, learning, and the builder's frozen backbone."""

import inspect
import itertools

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from lrcn.backbones import create_backbone
from lrcn.config import BackboneConfig
from lrcn.data.vocab import Vocabulary
from lrcn.models import build_model, create_model, model_entry
from lrcn.models.captioning import VocabularyData
from lrcn.models.retrieval import (
    RETRIEVAL,
    ImageEncoder,
    JointEmbedding,
    RetrievalExtras,
    RetrievalModel,
    RetrievalModelConfig,
    SentenceEncoder,
    VseConfig,
    contrastive_loss,
    vse,
)


def _reference_loss(images, texts, margin, hardest, image_ids=None):
    """The loss as VSE++ writes it, one pair at a time in plain Python."""
    s = (images @ texts.T).tolist()
    n = len(s)
    ids = list(range(n)) if image_ids is None else image_ids.tolist()
    total = 0.0
    for p in range(n):  # the positive pair (image p, text p)
        negatives = [q for q in range(n) if ids[q] != ids[p]]
        caption = [max(0.0, margin + s[p][t] - s[p][p]) for t in negatives]  # texts for image p
        image = [max(0.0, margin + s[j][p] - s[p][p]) for j in negatives]  # images for text p
        for costs in (caption, image):
            total += (max(costs) if costs else 0.0) if hardest else sum(costs)
    return total


@pytest.mark.parametrize("hardest", [True, False])
@pytest.mark.parametrize("with_ids", [False, True])
def test_loss_equals_a_plain_double_loop(hardest, with_ids):
    torch.manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(7, 5), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(7, 5), dim=1)
    image_ids = torch.tensor([3, 1, 3, 0, 1, 2, 3]) if with_ids else None
    loss = contrastive_loss(images, texts, margin=0.3, hardest=hardest, image_ids=image_ids)
    expected = _reference_loss(images, texts, 0.3, hardest, image_ids)
    assert expected > 0  # the batch violates the margin: the comparison means something
    assert loss.item() == pytest.approx(expected, abs=1e-5)


# Scores s(image i, text t): image 0 ranks text 1 (hinge 0.2 + 0.6 - 0.5 = 0.3) and text 2
# (0.2 + 0.4 - 0.5 = 0.1) within the margin; every other negative is far off.
SCORES = torch.tensor([[0.5, 0.6, 0.4], [0.0, 0.9, 0.0], [0.0, 0.0, 0.9]])


@pytest.mark.parametrize("transpose", [False, True])
def test_max_of_hinges_keeps_only_the_hardest_negative(transpose):
    """``images = I``, ``texts = S^T`` make ``images @ texts.T = S``; transposed, the same
    violations are of image retrieval (column direction) instead of caption retrieval."""
    scores = SCORES.T if transpose else SCORES
    images, texts = torch.eye(3), scores.T.contiguous()
    assert torch.equal(images @ texts.T, scores)
    hardest = contrastive_loss(images, texts, margin=0.2, hardest=True)
    summed = contrastive_loss(images, texts, margin=0.2, hardest=False)
    assert hardest.item() == pytest.approx(0.3, abs=1e-6)  # the pair (image 0, text 1) alone
    assert summed.item() == pytest.approx(0.3 + 0.1, abs=1e-6)


@pytest.mark.parametrize("hardest", [True, False])
def test_no_loss_past_the_margin_and_same_image_pairs_are_not_negatives(hardest):
    # Two captions of image 7 (rows 0 and 1); each positive beats every other pair by 1 > 0.2.
    e = torch.eye(3)
    images = torch.stack([e[0], e[0], e[1], e[2]])  # (4, 3)
    texts = images.clone()
    same_image = torch.tensor([7, 7, 3, 5])
    assert contrastive_loss(images, texts, 0.2, hardest, same_image).item() == 0.0
    # Without the ids, text 1 is a negative of image 0 with s = 1 = s(0, 0): each of the two
    # rows and two columns costs its margin, 0.2 (and nothing else does).
    assert contrastive_loss(images, texts, 0.2, hardest).item() == pytest.approx(0.8, abs=1e-6)
    apart = torch.eye(4)  # four different images, four captions: all past the margin
    assert contrastive_loss(apart, apart, 0.2, hardest).item() == 0.0


def test_encoders_give_unit_vectors_and_padding_changes_nothing():
    torch.manual_seed(0)
    text = SentenceEncoder(20, 8, 16, 2, 12, 0.0).eval()
    image = ImageEncoder(10, 12)
    out = image(torch.randn(5, 10) * 7)
    assert out.shape == (5, 12)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))

    sentence = torch.tensor([[5, 9, 4]])
    short = text(sentence, torch.tensor([3]))
    assert short.shape == (1, 12)
    torch.testing.assert_close(short.norm(dim=1), torch.ones(1))
    padded = torch.cat([sentence, torch.zeros(1, 4, dtype=torch.long)], dim=1)  # (1, 7)
    garbage = torch.cat([sentence, torch.tensor([[7, 8, 11, 19]])], dim=1)  # past the length
    for ids in (padded, garbage):
        assert torch.allclose(text(ids, torch.tensor([3])), short, atol=1e-6)
    # In a batch beside a longer sentence it is the same vector too.
    batch = torch.stack([padded[0], torch.randint(1, 20, (7,))])
    both = text(batch, torch.tensor([3, 7]))
    torch.testing.assert_close(both.norm(dim=1), torch.ones(2))
    assert torch.allclose(both[:1], short, atol=1e-6)
    assert not torch.allclose(both[1:], short, atol=1e-3)
    # The vector is the last layer's state at the last word, projected: the top of the stack.
    top = text.lstm(text.embed(batch[1:]))[0][:, -1]  # (1, H): last layer, word 7
    torch.testing.assert_close(both[1:], torch.nn.functional.normalize(text.proj(top), dim=1))


def _recall_at_1(head, features, ids, lengths):
    """Text -> image R@1: each text's best-scoring image is its own."""
    with torch.no_grad():
        images, texts = head(features, ids, lengths)
        best = (images @ texts.T).argmax(dim=0)  # (N,): the top image of each text column
    return float((best == torch.arange(len(best))).float().mean())


@pytest.mark.parametrize("loss", ["max_hinge", "sum_hinge"])
def test_the_joint_embedding_learns_which_image_a_sentence_describes(loss):
    """40 images, each the sum of three "parts" (one of 4, one of 5, one of 2; random vectors
    of size 16); its sentence names the three parts with three words. Every sentence fits
    exactly one image, which a random embedding finds only by chance (1/40)."""
    torch.manual_seed(0)
    n, d = 40, 16
    parts = torch.tensor(list(itertools.product(range(4), range(5), range(2))))  # (40, 3)
    ids = torch.stack([4 + parts[:, 0], 8 + parts[:, 1], 13 + parts[:, 2]], dim=1)  # (40, 3)
    a, b, c = torch.randn(4, d), torch.randn(5, d), torch.randn(2, d)
    features = a[parts[:, 0]] + b[parts[:, 1]] + c[parts[:, 2]]  # (40, 16)
    lengths = torch.full((n,), 3)
    head = JointEmbedding(d, 15, 16, 32, 1, 32, 0.0, 0.2, loss)
    assert _recall_at_1(head, features, ids, lengths) < 0.2
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    for _ in range(150):
        images, texts = head(features, ids, lengths)
        cost = contrastive_loss(images, texts, margin=head.margin, hardest=head.hardest)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
    assert _recall_at_1(head, features, ids, lengths) > 0.8


def test_the_builder_freezes_the_backbone_and_takes_every_config_field():
    torch.manual_seed(0)
    model = create_model(
        "vse", backbone=create_backbone("simple_cnn"), vocab_size=20, embed_size=8,
        hidden_size=16, joint_size=12, margin=0.1, loss="sum_hinge",
    )  # fmt: skip
    assert isinstance(model, RetrievalModel) and isinstance(model.head, JointEmbedding)
    assert model.freeze_backbone and model.feature_kind == "pooled"
    assert model.head.margin == 0.1 and model.head.hardest is False
    assert all(not p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert model.head.training and not model.backbone.training

    images = torch.randn(2, 3, 64, 64)
    features = model.features(images)
    assert features.shape == (2, model.backbone.out_features)
    ids = torch.tensor([[5, 6, 7], [8, 9, 0]])
    lengths = torch.tensor([3, 2])
    img, txt = model(features, ids, lengths)
    assert img.shape == txt.shape == (2, 12)
    torch.testing.assert_close(model.encode_images(features), img)
    contrastive_loss(img, txt, model.head.margin, model.head.hardest).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())

    # Every field of the config reaches the builder (build_model drops the ones it does not
    # take, so a misspelt parameter would be silently ignored).
    entry = model_entry("vse")
    assert entry.family is RETRIEVAL and entry.config is VseConfig and entry.builder is vse
    network = set(VseConfig.model_fields) - set(BackboneConfig.model_fields) - {"name"}
    assert network <= set(inspect.signature(vse).parameters)

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "runs"])
    extras = RetrievalExtras(vocab=VocabularyData(**vocab.to_dict()))
    assert extras.vocabulary().words == vocab.words
    section = {
        "name": "vse", "backbone": "simple_cnn", "embed_size": 6, "hidden_size": 10,
        "num_layers": 2, "joint_size": 9, "dropout": 0.1, "margin": 0.3, "loss": "max_hinge",
    }  # fmt: skip
    built = build_model(section, extras, pretrained=False)
    assert isinstance(built, RetrievalModel)
    assert built.head.text.embed.num_embeddings == len(vocab)
    assert built.head.text.lstm.num_layers == 2 and built.head.text.lstm.hidden_size == 10
    assert built.head.text.proj.out_features == 9 and built.head.text.dropout.p == 0.1
    assert built.head.margin == 0.3 and built.head.hardest is True


def test_config_and_extras_refuse_what_they_cannot_build():
    config = TypeAdapter(RetrievalModelConfig)
    assert config.validate_python({"name": "vse"}).joint_size == 1024
    for bad in ({"name": "vse", "loss": "triplet"}, {"name": "vse", "margin": 0},
                {"name": "vse", "freeze_backbone": False}, {"name": "other"}):  # fmt: skip
        with pytest.raises(ValidationError):
            config.validate_python(bad)
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "cat"]).to_dict()
    edited = {**vocab, "words": [*vocab["words"][:4], "dog"]}
    with pytest.raises(ValidationError, match="fingerprint"):
        RetrievalExtras(vocab=VocabularyData(**edited))
