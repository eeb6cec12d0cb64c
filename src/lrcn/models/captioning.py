"""Image captioning: one image in, a sentence out (LRCN paper, section 5).

Three decoders, each trained with teacher forcing (the true previous word is the input) and
decoded with :mod:`lrcn.decoding` through one ``step(tokens, state)`` function:

* ``show_and_tell`` (Vinyals et al., CVPR 2015): the image embedding is the LSTM's first input;
  the words follow.
* ``lrcn_captioner`` (Donahue et al., CVPR 2015, "LRCN2f"): a first LSTM sees only the embedded
  previous word; a second LSTM sees the first one's output and the image features at every
  step; a linear layer scores the vocabulary. ``factored=False`` is the unfactored variant:
  one LSTM stack sees word and image together from the first layer.
* ``show_attend_tell`` (Xu et al., ICML 2015): at every word, soft attention over the CNN's
  feature grid gives a context vector, scaled by a gate β = σ(f_β(h)), fed to an LSTM cell with
  the word; the doubly stochastic regulariser λ Σ_p (1 - Σ_t α_tp)² pushes attention to cover
  the whole image over the sentence.

Captions are id tensors ``(B, L)`` that start with ``<start>`` and end with ``<end>`` then
``<pad>``; the model predicts tokens 1..L-1 from tokens 0..L-2.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, field_validator
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.data.vocab import Vocabulary
from lrcn.models._registry import ModelFamily, register_model
from lrcn.nn import LSTM, LSTMCell, SoftAttention

FeatureKind = Literal["pooled", "grid"]
State = dict[str, Tensor]

__all__ = [
    "CAPTIONING",
    "CaptionModelConfig",
    "CaptionOutput",
    "CaptioningExtras",
    "ImageCaptioner",
    "caption_loss",
]


class CaptionOutput(NamedTuple):
    """``logits (B, L-1, V)`` for tokens 1..L-1; ``alphas (B, L-1, P)`` for attention models."""

    logits: Tensor
    alphas: Tensor | None = None


def caption_loss(
    output: CaptionOutput, captions: Tensor, pad_id: int = 0, attention_weight: float = 0.0
) -> Tensor:
    """Cross-entropy over real tokens, plus the doubly stochastic attention regulariser."""
    targets = captions[:, 1:]  # (B, L-1)
    loss = F.cross_entropy(output.logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)
    if output.alphas is not None and attention_weight > 0:
        mask = (targets != pad_id).unsqueeze(2)  # (B, L-1, 1): attention at real words only
        coverage = (output.alphas * mask).sum(dim=1)  # (B, P)
        loss = loss + attention_weight * ((1.0 - coverage) ** 2).mean()
    return loss


def real_tokens(captions: Tensor, pad_id: int = 0) -> int:
    """How many target tokens :func:`caption_loss` averages over (the loss's weight when
    batches are merged, e.g. across DDP processes): ``captions`` is ``(B, L)`` with <start>."""
    return int((captions[:, 1:] != pad_id).sum())


def _batch_first_state(h: Tensor, c: Tensor) -> State:
    return {"h": h.transpose(0, 1).contiguous(), "c": c.transpose(0, 1).contiguous()}


def _layer_first(state: State, prefix: str = "") -> tuple[Tensor, Tensor]:
    return state[prefix + "h"].transpose(0, 1).contiguous(), state[prefix + "c"].transpose(
        0, 1
    ).contiguous()


# --------------------------------------------------------------------------------------------
# Decoders: image features + caption ids -> CaptionOutput; init_state / step for decoding
# --------------------------------------------------------------------------------------------


class ShowAndTellDecoder(nn.Module):
    """Image embedding as the first LSTM input, then the words."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 1,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_embed = nn.Linear(feature_size, embed_size)
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.lstm = LSTM(embed_size, hidden_size, num_layers, batch_first=True,
                         dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def forward(self, features: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, D)``, ``captions (B, L)`` -> logits for tokens 1..L-1."""
        image = self.image_embed(features).unsqueeze(1)  # (B, 1, E): the step before <start>
        words = self.word_embed(captions[:, :-1])  # (B, L-1, E)
        hidden, _ = self.lstm(self.dropout(torch.cat([image, words], dim=1)))  # (B, L, H)
        return CaptionOutput(self.classifier(self.dropout(hidden[:, 1:])))  # (B, L-1, V)

    def init_state(self, features: Tensor) -> State:
        _, (h, c) = self.lstm(self.image_embed(features).unsqueeze(1))  # feed the image once
        return _batch_first_state(h, c)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        out, (h, c) = self.lstm(self.word_embed(tokens).unsqueeze(1), _layer_first(state))
        return self.classifier(out[:, 0]).log_softmax(dim=-1), _batch_first_state(h, c)


class LRCNDecoder(nn.Module):
    """Factored: LSTM 1 on words, LSTM 2 on (LSTM 1 output, image). Unfactored: one stack on
    (word, image)."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        factored: bool = True,
        num_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.factored = factored
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.image_proj = nn.Linear(feature_size, embed_size)
        self.dropout = nn.Dropout(dropout)
        if factored:
            self.language = LSTM(embed_size, hidden_size, batch_first=True)
            self.multimodal = LSTM(hidden_size + embed_size, hidden_size, batch_first=True)
        else:
            self.multimodal = LSTM(2 * embed_size, hidden_size, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def _run(self, words: Tensor, image: Tensor, state: State | None) -> tuple[Tensor, State]:
        """``words (B, T, E)``, ``image (B, E)`` -> hidden ``(B, T, H)`` and the new state."""
        image_t = image.unsqueeze(1).expand(-1, words.shape[1], -1)  # the image at every step
        new: State = {}
        if self.factored:
            lang, (h1, c1) = self.language(
                words, None if state is None else _layer_first(state, "l_")
            )
            new |= {"l_" + k: v for k, v in _batch_first_state(h1, c1).items()}
            inputs = torch.cat([self.dropout(lang), image_t], dim=2)
        else:
            inputs = torch.cat([words, image_t], dim=2)
        hidden, (h2, c2) = self.multimodal(
            inputs, None if state is None else _layer_first(state, "m_")
        )
        new |= {"m_" + k: v for k, v in _batch_first_state(h2, c2).items()}
        return hidden, new

    def forward(self, features: Tensor, captions: Tensor) -> CaptionOutput:
        words = self.dropout(self.word_embed(captions[:, :-1]))  # (B, L-1, E)
        hidden, _ = self._run(words, self.image_proj(features), None)
        return CaptionOutput(self.classifier(self.dropout(hidden)))

    def init_state(self, features: Tensor) -> State:
        batch = features.shape[0]
        h = features.new_zeros(batch, 1, self.multimodal.hidden_size)
        state = {"m_h": h.expand(-1, self.multimodal.num_layers, -1).contiguous(),
                 "m_c": h.expand(-1, self.multimodal.num_layers, -1).contiguous(),
                 "image": self.image_proj(features)}  # fmt: skip
        if self.factored:
            state |= {"l_h": h.clone(), "l_c": h.clone()}
        return state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, new = self._run(self.word_embed(tokens).unsqueeze(1), state["image"], state)
        new["image"] = state["image"]
        return self.classifier(hidden[:, 0]).log_softmax(dim=-1), new


def masked_mean(features: Tensor, mask: Tensor | None) -> Tensor:
    """``features (B, P, D)``, zero where ``mask (B, P)`` is False -> the mean of the kept
    positions ``(B, D)``; every position without a mask."""
    if mask is None:
        return features.mean(dim=1)
    return features.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(features.dtype)


class AttentionDecoder(nn.Module):
    """Soft attention over a set of feature vectors at every word: the context vector (scaled
    by the gate β = σ(f_β(h)) when ``gated``) and the embedded previous word feed an LSTM
    cell; h0, c0 come from the mean feature. Show-Attend-and-Tell attends over an image's grid
    positions, the temporal attention decoder (video_decoders.py) over a video's frames."""

    def __init__(
        self,
        attention: SoftAttention,
        feature_size: int,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        dropout: float,
        gated: bool,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.init_h = nn.Linear(feature_size, hidden_size)
        self.init_c = nn.Linear(feature_size, hidden_size)
        self.gate = nn.Linear(hidden_size, feature_size) if gated else None  # f_β
        self.cell = LSTMCell(embed_size + feature_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def _start(self, features: Tensor, mask: Tensor | None = None) -> State:
        """``features (B, P, D)`` (zero where ``mask (B, P)`` is False): h0, c0 from the mean
        of the positions kept, and the attention's projection done once. ``alpha`` (the last
        word's attention, zero before the first) is there from the start, so a step's state
        has the same keys in and out, as an exported step graph needs."""
        mean = masked_mean(features, mask)  # (B, D)
        state = {
            "h": torch.tanh(self.init_h(mean)),
            "c": torch.tanh(self.init_c(mean)),
            "features": features,
            "projected": self.attention.project_features(features),
            "alpha": features.new_zeros(features.shape[:2]),  # (B, P)
        }
        return state if mask is None else {**state, "mask": mask}

    def _advance(self, words: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        """One word ``(B, E)`` -> hidden ``(B, H)``, attention ``(B, P)``, the new state."""
        context, alpha = self.attention(
            state["features"], state["h"], mask=state.get("mask"), projected=state["projected"]
        )  # (B, D), (B, P)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(state["h"])) * context  # (B, D), gated
        h, c = self.cell(torch.cat([words, context], dim=1), (state["h"], state["c"]))
        return h, alpha, {**state, "h": h, "c": c}

    def _unroll(self, state: State, captions: Tensor) -> CaptionOutput:
        """Teacher forcing from ``state``: logits and attention ``(B, L-1, P)`` per word."""
        words = self.word_embed(captions[:, :-1])  # (B, L-1, E)
        hiddens, alphas = [], []
        for w in words.unbind(1):  # attention depends on h, so the steps run one by one
            h, alpha, state = self._advance(w, state)
            hiddens.append(h)
            alphas.append(alpha)
        logits = self.classifier(self.dropout(torch.stack(hiddens, dim=1)))  # (B, L-1, V)
        return CaptionOutput(logits, torch.stack(alphas, dim=1))  # alphas (B, L-1, P)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """``tokens (N,)`` -> ``log_probs (N, V)`` and the new state, with this word's
        attention as ``alpha (N, P)`` (for plots)."""
        h, alpha, state = self._advance(self.word_embed(tokens), state)
        return self.classifier(h).log_softmax(dim=-1), {**state, "alpha": alpha}


class ShowAttendTellDecoder(AttentionDecoder):
    """Soft attention over the feature grid at every word, with the gating scalar β."""

    feature_kind: FeatureKind = "grid"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        attention_size: int = 256,
        dropout: float = 0.5,
    ) -> None:
        attention = SoftAttention(feature_size, hidden_size, attention_size)
        super().__init__(
            attention, feature_size, vocab_size, embed_size, hidden_size, dropout, gated=True
        )

    def init_state(self, features: Tensor) -> State:
        """``features (B, P, D)``: h0, c0 from the mean feature; the projection done once."""
        return self._start(features)

    def forward(self, features: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, P, D)``, ``captions (B, L)`` -> logits and attention per step."""
        return self._unroll(self.init_state(features), captions)


# --------------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------------


class ImageCaptioner(nn.Module):
    """A backbone and a decoder. ``features(images)`` -> what the decoder reads."""

    def __init__(
        self, backbone: Backbone, decoder: nn.Module, freeze_backbone: bool = True
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.freeze_backbone = freeze_backbone
        self.feature_kind: FeatureKind = decoder.feature_kind  # type: ignore[assignment]
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageCaptioner:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def features(self, images: Tensor) -> Tensor:
        """``images (B, 3, H, W)`` -> pooled ``(B, D)`` or grid ``(B, P, D)`` per the decoder."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            if self.feature_kind == "pooled":
                return self.backbone(images)
            grid = self.backbone.forward_features(images)  # (B, D, h, w)
            return grid.flatten(2).transpose(1, 2)  # (B, P=h*w, D)

    def forward(self, images: Tensor, captions: Tensor) -> CaptionOutput:
        return self.decoder(self.features(images), captions)

    def init_state(self, features: Tensor) -> State:
        """The decoder's state before ``<start>``, from :meth:`features`' output."""
        return self.decoder.init_state(features)  # type: ignore[operator]

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoding step: ``tokens (N,)`` -> ``(log_probs (N, V), state)``."""
        return self.decoder.step(tokens, state)  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Configs, bundle extras and the family
# --------------------------------------------------------------------------------------------


class ShowAndTellConfig(BackboneConfig):
    name: Literal["show_and_tell"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class LRCNCaptionerConfig(BackboneConfig):
    name: Literal["lrcn_captioner"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    factored: bool = True
    num_layers: int = Field(2, ge=1)  # layers of the unfactored stack (factored: always 2)
    dropout: float = Field(0.5, ge=0, lt=1)


class ShowAttendTellConfig(BackboneConfig):
    name: Literal["show_attend_tell"]
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    attention_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    attention_regularization: float = Field(1.0, ge=0)  # λ of the doubly stochastic term


CaptionModelConfig = Annotated[
    ShowAndTellConfig | LRCNCaptionerConfig | ShowAttendTellConfig, Field(discriminator="name")
]


class VocabularyData(BaseModel):
    """A vocabulary as stored: its words in id order and their fingerprint."""

    words: list[str]
    fingerprint: str


class CaptioningExtras(BaseModel):
    """What a captioning bundle carries beside its weights: the vocabulary, checked against its
    fingerprint when the bundle is loaded (an edited word list is refused)."""

    vocab: VocabularyData

    @field_validator("vocab")
    @classmethod
    def _fingerprint_matches(cls, vocab: VocabularyData) -> VocabularyData:
        Vocabulary.from_dict(vocab.model_dump())  # raises ValueError on a mismatch
        return vocab

    @classmethod
    def of(cls, vocab: Vocabulary) -> CaptioningExtras:
        return cls(vocab=VocabularyData(**vocab.to_dict()))

    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_dict(self.vocab.model_dump())


CAPTIONING = ModelFamily(
    "captioning", CaptioningExtras, lambda e: {"vocab_size": len(e.vocab.words)}
)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


@register_model(CAPTIONING, ShowAndTellConfig)
def show_and_tell(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    num_layers: int = 1,
    dropout: float = 0.5,
    freeze_backbone: bool = True,
) -> ImageCaptioner:
    """Show and Tell: the image is the LSTM's first input."""
    decoder = ShowAndTellDecoder(
        backbone.out_features, vocab_size, embed_size, hidden_size, num_layers, dropout
    )
    return ImageCaptioner(backbone, decoder, freeze_backbone)


@register_model(CAPTIONING, LRCNCaptionerConfig)
def lrcn_captioner(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    factored: bool = True,
    num_layers: int = 2,
    dropout: float = 0.5,
    freeze_backbone: bool = True,
) -> ImageCaptioner:
    """The LRCN captioner, factored (default) or unfactored."""
    decoder = LRCNDecoder(
        backbone.out_features, vocab_size, embed_size, hidden_size, factored, num_layers, dropout
    )
    return ImageCaptioner(backbone, decoder, freeze_backbone)


@register_model(CAPTIONING, ShowAttendTellConfig)
def show_attend_tell(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    attention_size: int = 256,
    dropout: float = 0.5,
    freeze_backbone: bool = True,
) -> ImageCaptioner:
    """Show, Attend and Tell with soft attention over the backbone's feature grid."""
    decoder = ShowAttendTellDecoder(
        backbone.out_features, vocab_size, embed_size, hidden_size, attention_size, dropout
    )
    return ImageCaptioner(backbone, decoder, freeze_backbone)
