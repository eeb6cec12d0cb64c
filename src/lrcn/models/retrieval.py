"""Text-to-image retrieval: images and sentences in one joint space, ranked by cosine.

A frozen CNN sees the image, an LSTM reads the sentence, and two small encoders map each into a
joint space of unit vectors where a caption lies nearer its own image than any other. Retrieval
in either direction is then one matrix product: ``scores = images @ texts.T``.

* ``vse`` (Faghri et al., BMVC 2018, "VSE++: Improving Visual-Semantic Embeddings with Hard
  Negatives"): a linear layer on the pooled CNN feature (VSE++'s model on precomputed features)
  and a recurrent sentence encoder, both L2-normalised, trained with a bidirectional hinge
  loss. VSE++'s "max of hinges" keeps only the hardest negative of each positive pair; the
  older "sum of hinges" (Kiros et al. 2014, the VSE0 baseline of the paper) sums over all of
  them. The loss is chosen by the config's ``loss``.

VSE++ reads the sentence with a GRU whose final state *is* the text embedding. This project is
about CNN + LSTM models, so the sentence goes through the project's LSTM (:class:`lrcn.nn.LSTM`)
instead, and a linear layer maps its final hidden state to the joint space: the LSTM's width
is then free of the joint space's size.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, field_validator
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.data.vocab import Vocabulary
from lrcn.models._registry import ModelFamily, register_model
from lrcn.models.captioning import VocabularyData
from lrcn.nn import LSTM

RetrievalLoss = Literal["max_hinge", "sum_hinge"]

__all__ = [
    "RETRIEVAL",
    "ImageEncoder",
    "JointEmbedding",
    "RetrievalExtras",
    "RetrievalLoss",
    "RetrievalModel",
    "RetrievalModelConfig",
    "SentenceEncoder",
    "VseConfig",
    "contrastive_loss",
    "vse",
]


class RetrievalExtras(BaseModel):
    """A retrieval bundle's sentence vocabulary, checked against its fingerprint on load (an
    edited word list would silently map words to other embeddings)."""

    vocab: VocabularyData

    @field_validator("vocab")
    @classmethod
    def _fingerprint_matches(cls, vocab: VocabularyData) -> VocabularyData:
        Vocabulary.from_dict(vocab.model_dump())  # raises ValueError on a mismatch
        return vocab

    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_dict(self.vocab.model_dump())


RETRIEVAL = ModelFamily("retrieval", RetrievalExtras, lambda e: {"vocab_size": len(e.vocab.words)})


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------


def contrastive_loss(
    images: Tensor,
    texts: Tensor,
    margin: float = 0.2,
    hardest: bool = True,
    image_ids: Tensor | None = None,
) -> Tensor:
    """VSE++'s bidirectional hinge loss of a batch of matching pairs.

    Args:
        images: ``(B, E)`` image embeddings; row ``i`` matches ``texts[i]``.
        texts: ``(B, E)`` sentence embeddings.
        margin: how far a positive pair must out-score a negative one.
        hardest: ``True`` for VSE++'s "max of hinges" (only the hardest negative of each
            positive pair, in each direction, counts); ``False`` for the "sum of hinges" over
            every negative (VSE0, Kiros et al.). Summing lets many easy-ish negatives outweigh
            the one that actually ranks above the positive; the max trains on that one.
        image_ids: optional ``(B,)`` ids of the images. Two captions of one image in one batch
            are both right for it: pairs with equal ids are not negatives of each other.

    Returns:
        The scalar loss, *summed* over the batch as VSE++ does (not a mean: its learning rate
        and margin were tuned for that scale, and the scale grows with the batch size).

    With ``s = images @ texts.T`` ``(B, B)``, positives on the diagonal, the caption-retrieval
    cost of image ``i`` and negative text ``t`` is ``[margin + s(i, t) - s(i, i)]_+`` and the
    image-retrieval cost of text ``t`` and negative image ``j`` is
    ``[margin + s(j, t) - s(t, t)]_+``.
    """
    if images.ndim != 2 or images.shape != texts.shape:
        raise ValueError(
            f"images and texts must both be (B, E), got {tuple(images.shape)} and "
            f"{tuple(texts.shape)}"
        )
    scores = images @ texts.T  # (B, B): s(image i, text t)
    positive = scores.diagonal()  # (B,)
    cost_text = (margin + scores - positive[:, None]).clamp(min=0)  # (B, B): row i vs text t
    cost_image = (margin + scores - positive[None, :]).clamp(min=0)  # (B, B): image j vs col t
    if image_ids is None:
        same = torch.eye(len(scores), dtype=torch.bool, device=scores.device)  # (B, B)
    else:
        ids = image_ids.to(scores.device)
        same = ids[:, None] == ids[None, :]  # (B, B), the diagonal included
    cost_text = cost_text.masked_fill(same, 0.0)
    cost_image = cost_image.masked_fill(same, 0.0)
    if hardest:  # costs are >= 0 and the masked ones 0: a row of no negatives costs 0
        return cost_text.max(dim=1).values.sum() + cost_image.max(dim=0).values.sum()
    return cost_text.sum() + cost_image.sum()


# --------------------------------------------------------------------------------------------
# Encoders and the head
# --------------------------------------------------------------------------------------------


def _xavier(layer: nn.Linear) -> nn.Linear:
    """VSE++ initialises its projections Xavier-uniform with a zero bias."""
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SentenceEncoder(nn.Module):
    """Word embeddings -> dropout -> LSTM over the real words -> the last layer's final hidden
    state -> linear -> unit norm: ``(B, joint_size)``."""

    def __init__(
        self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int,
        joint_size: int, dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = LSTM(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.proj = _xavier(nn.Linear(hidden_size, joint_size))

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """``ids (B, L)`` word ids (``<pad>`` = 0), ``lengths (B,)`` >= 1 -> ``(B, J)``, unit
        norm. What lies past a sentence's length is never read."""
        words = self.dropout(self.embed(ids))  # (B, L, E)
        _, (h, _) = self.lstm(words, lengths=lengths)  # h: (layers, B, H) at each last word
        return F.normalize(self.proj(h[-1]), dim=1)  # (B, J)


class ImageEncoder(nn.Module):
    """A linear layer on the pooled CNN feature -> unit norm (VSE++ on precomputed features):
    ``(B, D) -> (B, joint_size)``."""

    def __init__(self, feature_size: int, joint_size: int) -> None:
        super().__init__()
        self.proj = _xavier(nn.Linear(feature_size, joint_size))

    def forward(self, features: Tensor) -> Tensor:
        """``features (B, D)`` pooled -> ``(B, J)``, unit norm."""
        return F.normalize(self.proj(features), dim=1)


class JointEmbedding(nn.Module):
    """Both encoders and the loss's settings: ``margin`` and ``hardest`` (max of hinges) are
    read by the task, ``contrastive_loss(..., margin=head.margin, hardest=head.hardest)``, so a
    bundle trains again with the loss it was trained with."""

    def __init__(
        self, feature_size: int, vocab_size: int, embed_size: int = 300,
        hidden_size: int = 1024, num_layers: int = 1, joint_size: int = 1024,
        dropout: float = 0.0, margin: float = 0.2, loss: RetrievalLoss = "max_hinge",
    ) -> None:  # fmt: skip
        super().__init__()
        self.image = ImageEncoder(feature_size, joint_size)
        self.text = SentenceEncoder(
            vocab_size, embed_size, hidden_size, num_layers, joint_size, dropout
        )
        self.margin = margin
        self.hardest = loss == "max_hinge"

    def encode_images(self, features: Tensor) -> Tensor:
        """``features (B, D)`` -> ``(B, J)`` unit vectors."""
        return self.image(features)

    def encode_texts(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """``ids (B, L)``, ``lengths (B,)`` -> ``(B, J)`` unit vectors."""
        return self.text(ids, lengths)

    def forward(self, features: Tensor, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``features (B, D)``, ``ids (B, L)``, ``lengths (B,)`` -> ``(images (B, J), texts
        (B, J))``."""
        return self.encode_images(features), self.encode_texts(ids, lengths)


class RetrievalModel(nn.Module):
    """A frozen backbone and a joint embedding. Training and evaluation read cached pooled
    features; ``features`` runs the backbone for new images (predict, indexing a gallery)."""

    def __init__(self, backbone: Backbone, head: JointEmbedding) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_kind: Literal["pooled"] = "pooled"
        self.freeze_backbone = True
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> RetrievalModel:
        super().train(mode)
        self.backbone.eval()  # frozen: its batch-norm statistics stay those it came with
        return self

    def features(self, images: Tensor) -> Tensor:
        """``(B, 3, S, S)`` normalised images -> pooled ``(B, D)``."""
        return self.backbone(images)

    def encode_images(self, features: Tensor) -> Tensor:
        """``features (B, D)`` -> ``(B, J)`` unit vectors."""
        return self.head.encode_images(features)

    def encode_texts(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """``ids (B, L)``, ``lengths (B,)`` -> ``(B, J)`` unit vectors."""
        return self.head.encode_texts(ids, lengths)

    def forward(self, features: Tensor, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(images (B, J), texts (B, J))`` of ``features (B, D)`` and ``ids (B, L)``."""
        return self.head(features, ids, lengths)


# --------------------------------------------------------------------------------------------
# Config and builder
# --------------------------------------------------------------------------------------------


class VseConfig(BackboneConfig):
    name: Literal["vse"]
    freeze_backbone: Literal[True] = True  # features are cached
    embed_size: int = Field(300, ge=1)
    hidden_size: int = Field(1024, ge=1)
    num_layers: int = Field(1, ge=1)
    joint_size: int = Field(1024, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    margin: float = Field(0.2, gt=0)
    loss: RetrievalLoss = "max_hinge"


# One member for now; the discriminator is there for the next model of the family.
RetrievalModelConfig = Annotated[VseConfig, Field(discriminator="name")]


@register_model(RETRIEVAL, VseConfig)
def vse(
    *, backbone: Backbone, vocab_size: int, embed_size: int = 300, hidden_size: int = 1024,
    num_layers: int = 1, joint_size: int = 1024, dropout: float = 0.0, margin: float = 0.2,
    loss: RetrievalLoss = "max_hinge",
) -> RetrievalModel:  # fmt: skip
    """VSE++: the pooled image and an LSTM-read sentence in one joint space."""
    head = JointEmbedding(
        backbone.out_features, vocab_size, embed_size, hidden_size, num_layers, joint_size,
        dropout, margin, loss,
    )  # fmt: skip
    return RetrievalModel(backbone, head)
