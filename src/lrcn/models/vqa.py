"""Visual question answering: a CNN sees the image, an LSTM reads the question, they meet.

Every model here scores a fixed answer vocabulary (the top-K training answers, stored in the
bundle with the question vocabulary) from ``image`` features of a frozen backbone and a
``question (B, L)`` of word ids with ``lengths (B,)``, and returns ``VqaOutput(logits (B, A),
attention (B, G, P) or None)``. Training uses soft targets (several humans answered each
question), so the loss is a binary cross-entropy per answer, as in Teney et al. 2018 and
Kazemi & Elqursh 2017.

* ``deeper_lstm_q_norm_i`` (Antol et al., ICCV 2015, "VQA", and its released "deeper LSTM Q +
  norm I" model): a two-layer LSTM reads the question; its final cell and hidden states of both
  layers, concatenated, are projected with tanh; the L2-normalised pooled image feature is
  projected with tanh to the same size; the element-wise product goes through an MLP.
* ``show_ask_attend_answer`` (Kazemi & Elqursh 2017, "Show, Ask, Attend, and Answer"): the
  L2-normalised CNN grid and the question's LSTM state are tiled together; two 1x1 layers
  score every grid position for each of G glimpses; each glimpse is a softmax-weighted sum of
  the grid; glimpses and question go through the classifier. The attention maps are returned
  for plots.
* ``question_only`` and ``image_only``: the language prior and the image prior of VQA,
  reported beside the real models (a model must beat both to show it looks and reads).
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.data.vocab import Vocabulary
from lrcn.models._registry import ModelFamily, register_model
from lrcn.models.captioning import VocabularyData
from lrcn.nn import LSTM

FeatureKind = Literal["pooled", "grid"]

__all__ = ["VQA", "VqaExtras", "VqaModel", "VqaModelConfig", "VqaOutput", "soft_target_loss"]


class VqaOutput(NamedTuple):
    """``logits (B, A)`` over the answer vocabulary; ``attention (B, G, P)`` for attention
    models (each glimpse's weights over the grid sum to 1)."""

    logits: Tensor
    attention: Tensor | None = None


def soft_target_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy of ``logits (B, A)`` against soft targets ``(B, A)`` in [0, 1],
    summed over answers and averaged over questions (the scale Teney et al. use)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / len(logits)


def answers_fingerprint(answers: list[str]) -> str:
    """SHA-1 prefix of the answer list in output order: output i means ``answers[i]``."""
    return hashlib.sha1("\n".join(answers).encode()).hexdigest()[:16]


class VqaExtras(BaseModel):
    """A VQA bundle's question vocabulary and answer list (output order), each checked
    against its fingerprint when the bundle is loaded: a reordered or edited answer list would
    otherwise name the wrong answer for every output."""

    vocab: VocabularyData
    answers: list[str] = Field(min_length=1)
    answers_fingerprint: str

    @field_validator("vocab")
    @classmethod
    def _fingerprint_matches(cls, vocab: VocabularyData) -> VocabularyData:
        Vocabulary.from_dict(vocab.model_dump())  # raises ValueError on a mismatch
        return vocab

    @field_validator("answers_fingerprint")
    @classmethod
    def _answers_match(cls, fingerprint: str, info: ValidationInfo) -> str:
        answers = info.data.get("answers")
        if answers is not None and answers_fingerprint(answers) != fingerprint:
            raise ValueError(
                "the stored answer list does not match its fingerprint: it was edited or "
                "belongs to other weights"
            )
        return fingerprint

    @classmethod
    def of(cls, vocab: Vocabulary, answers: list[str]) -> VqaExtras:
        return cls(
            vocab=VocabularyData(**vocab.to_dict()),
            answers=answers,
            answers_fingerprint=answers_fingerprint(answers),
        )

    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_dict(self.vocab.model_dump())


VQA = ModelFamily(
    "vqa", VqaExtras, lambda e: {"vocab_size": len(e.vocab.words), "num_answers": len(e.answers)}
)


# --------------------------------------------------------------------------------------------
# Question encoder and heads
# --------------------------------------------------------------------------------------------


class QuestionEncoder(nn.Module):
    """Word embeddings (tanh, as the VQA paper) -> LSTM over the real words -> every layer's
    final ``(h, c)`` concatenated: ``(B, 2 * layers * H)``."""

    def __init__(
        self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.lstm = LSTM(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out_features = 2 * num_layers * hidden_size

    def forward(self, question: Tensor, lengths: Tensor) -> Tensor:
        """``question (B, L)`` ids, ``lengths (B,)`` >= 1 -> ``(B, 2 * layers * H)``."""
        words = self.dropout(torch.tanh(self.embed(question)))  # (B, L, E)
        _, (h, c) = self.lstm(words, lengths=lengths)  # (layers, B, H) each
        return torch.cat([h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)], dim=1)


def _classifier(in_features: int, hidden: int, num_answers: int, dropout: float) -> nn.Module:
    """Dropout, a ReLU hidden layer (Kazemi & Elqursh; a tanh layer saturates within the first
    epoch under Adam here), and the answer scores. The output bias starts at ``-log A``, each
    answer's sigmoid near ``1 / A``: a zero bias starts every one of the A answers at 0.5 and
    the first epoch goes on pushing them all down."""
    out = nn.Linear(hidden, num_answers)
    nn.init.constant_(out.bias, -math.log(num_answers))
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), out
    )


class DeeperLstmQNormI(nn.Module):
    """The VQA paper's best open-ended baseline: ``tanh(W_q q) * tanh(W_i norm(i))`` -> MLP."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self, feature_size: int, vocab_size: int, num_answers: int, embed_size: int = 300,
        hidden_size: int = 512, num_layers: int = 2, fused_size: int = 1024,
        dropout: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__()
        self.question = QuestionEncoder(vocab_size, embed_size, hidden_size, num_layers, dropout)
        self.q_proj = nn.Linear(self.question.out_features, fused_size)
        self.i_proj = nn.Linear(feature_size, fused_size)
        self.classifier = _classifier(fused_size, fused_size, num_answers, dropout)

    def forward(self, image: Tensor, question: Tensor, lengths: Tensor) -> VqaOutput:
        """``image (B, D)`` pooled features, ``question (B, L)``, ``lengths (B,)``."""
        q = torch.tanh(self.q_proj(self.question(question, lengths)))  # (B, F)
        i = torch.tanh(self.i_proj(F.normalize(image, dim=1)))  # (B, F)
        return VqaOutput(self.classifier(q * i))  # (B, A)


class ShowAskAttendAnswer(nn.Module):
    """Question-conditioned soft attention over the grid with G glimpses (Kazemi & Elqursh)."""

    feature_kind: FeatureKind = "grid"

    def __init__(
        self, feature_size: int, vocab_size: int, num_answers: int, embed_size: int = 300,
        hidden_size: int = 1024, glimpses: int = 2, attention_size: int = 512,
        classifier_size: int = 1024, dropout: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__()
        self.question = QuestionEncoder(vocab_size, embed_size, hidden_size, 1, dropout)
        q_size = self.question.out_features
        self.attend = nn.Sequential(
            nn.Linear(feature_size + q_size, attention_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(attention_size, glimpses),
        )  # fmt: skip  # a 1x1 convolution is a linear layer over each grid position
        self.classifier = _classifier(
            glimpses * feature_size + q_size, classifier_size, num_answers, dropout
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, image: Tensor, question: Tensor, lengths: Tensor) -> VqaOutput:
        """``image (B, P, C)`` grid features, ``question (B, L)``, ``lengths (B,)``."""
        q = self.question(question, lengths)  # (B, Q)
        grid = F.normalize(image, dim=2)  # (B, P, C): each position's channels to unit norm
        tiled = q.unsqueeze(1).expand(-1, grid.shape[1], -1)  # (B, P, Q)
        scores = self.attend(torch.cat([self.dropout(grid), tiled], dim=2))  # (B, P, G)
        alpha = scores.softmax(dim=1).transpose(1, 2)  # (B, G, P), each glimpse sums to 1
        glimpses = torch.bmm(alpha, grid).flatten(1)  # (B, G * C)
        return VqaOutput(self.classifier(torch.cat([glimpses, q], dim=1)), alpha)


class QuestionOnly(nn.Module):
    """The language prior: the question alone (no image) through the same LSTM and MLP."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self, vocab_size: int, num_answers: int, embed_size: int = 300, hidden_size: int = 512,
        fused_size: int = 1024, dropout: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__()
        self.question = QuestionEncoder(vocab_size, embed_size, hidden_size, 2, dropout)
        self.classifier = _classifier(self.question.out_features, fused_size, num_answers, dropout)

    def forward(self, image: Tensor, question: Tensor, lengths: Tensor) -> VqaOutput:
        return VqaOutput(self.classifier(self.question(question, lengths)))


class ImageOnly(nn.Module):
    """The image prior: the normalised pooled image alone (no question) through an MLP."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self, feature_size: int, num_answers: int, fused_size: int = 1024, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.classifier = _classifier(feature_size, fused_size, num_answers, dropout)

    def forward(self, image: Tensor, question: Tensor, lengths: Tensor) -> VqaOutput:
        return VqaOutput(self.classifier(F.normalize(image, dim=1)))


Head = DeeperLstmQNormI | ShowAskAttendAnswer | QuestionOnly | ImageOnly


class VqaModel(nn.Module):
    """A frozen backbone and a VQA head. Training and evaluation read cached features;
    ``features`` runs the backbone for new images (predict)."""

    def __init__(self, backbone: Backbone, head: Head) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_kind: FeatureKind = head.feature_kind
        self.freeze_backbone = True
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> VqaModel:
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, images: Tensor) -> Tensor:
        """``(B, 3, S, S)`` normalised images -> pooled ``(B, D)`` or grid ``(B, P, C)``."""
        if self.feature_kind == "grid":
            grid = self.backbone.forward_features(images)  # (B, C, h, w)
            return grid.flatten(2).transpose(1, 2)  # (B, P=h*w, C)
        return self.backbone(images)

    def forward(self, image: Tensor, question: Tensor, lengths: Tensor) -> VqaOutput:
        return self.head(image, question, lengths)


# --------------------------------------------------------------------------------------------
# Configs and builders
# --------------------------------------------------------------------------------------------


class _VqaConfig(BackboneConfig):
    freeze_backbone: Literal[True] = True  # features are cached
    embed_size: int = Field(300, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class DeeperLstmConfig(_VqaConfig):
    name: Literal["deeper_lstm_q_norm_i"]
    hidden_size: int = Field(512, ge=1)
    num_layers: int = Field(2, ge=1)
    fused_size: int = Field(1024, ge=1)


class SaaaConfig(_VqaConfig):
    name: Literal["show_ask_attend_answer"]
    hidden_size: int = Field(1024, ge=1)
    glimpses: int = Field(2, ge=1)
    attention_size: int = Field(512, ge=1)
    classifier_size: int = Field(1024, ge=1)


class QuestionOnlyConfig(_VqaConfig):
    name: Literal["question_only"]
    hidden_size: int = Field(512, ge=1)
    fused_size: int = Field(1024, ge=1)


class ImageOnlyConfig(_VqaConfig):
    name: Literal["image_only"]
    fused_size: int = Field(1024, ge=1)


VqaModelConfig = Annotated[
    DeeperLstmConfig | SaaaConfig | QuestionOnlyConfig | ImageOnlyConfig,
    Field(discriminator="name"),
]


@register_model(VQA, DeeperLstmConfig)
def deeper_lstm_q_norm_i(
    *, backbone: Backbone, vocab_size: int, num_answers: int, embed_size: int = 300,
    hidden_size: int = 512, num_layers: int = 2, fused_size: int = 1024, dropout: float = 0.5,
) -> VqaModel:  # fmt: skip
    """The VQA paper's deeper LSTM question + normalised image model."""
    head = DeeperLstmQNormI(
        backbone.out_features, vocab_size, num_answers, embed_size, hidden_size, num_layers,
        fused_size, dropout,
    )  # fmt: skip
    return VqaModel(backbone, head)


@register_model(VQA, SaaaConfig)
def show_ask_attend_answer(
    *, backbone: Backbone, vocab_size: int, num_answers: int, embed_size: int = 300,
    hidden_size: int = 1024, glimpses: int = 2, attention_size: int = 512,
    classifier_size: int = 1024, dropout: float = 0.5,
) -> VqaModel:  # fmt: skip
    """Show, Ask, Attend, and Answer: glimpses over the grid, conditioned on the question."""
    head = ShowAskAttendAnswer(
        backbone.out_features, vocab_size, num_answers, embed_size, hidden_size, glimpses,
        attention_size, classifier_size, dropout,
    )  # fmt: skip
    return VqaModel(backbone, head)


@register_model(VQA, QuestionOnlyConfig)
def question_only(
    *, backbone: Backbone, vocab_size: int, num_answers: int, embed_size: int = 300,
    hidden_size: int = 512, fused_size: int = 1024, dropout: float = 0.5,
) -> VqaModel:  # fmt: skip
    """The language prior: answers from the question alone."""
    head = QuestionOnly(vocab_size, num_answers, embed_size, hidden_size, fused_size, dropout)
    return VqaModel(backbone, head)


@register_model(VQA, ImageOnlyConfig)
def image_only(
    *, backbone: Backbone, num_answers: int, fused_size: int = 1024, dropout: float = 0.5
) -> VqaModel:
    """The image prior: answers from the image alone."""
    return VqaModel(backbone, ImageOnly(backbone.out_features, num_answers, fused_size, dropout))
