"""ConvLSTM2d against Keras 3 ConvLSTM2D itself (KERAS_BACKEND=torch); streaming; dropout."""

import keras
import numpy as np
import pytest
import torch

from lrcn.nn import ConvLSTM2d, ConvLSTMOutput

CASES = [
    {"filters": 4, "kernel_size": 3, "padding": "same"},
    {"filters": 3, "kernel_size": (3, 2), "padding": "same", "strides": 2},  # asymmetric pad
    {"filters": 3, "kernel_size": 2, "padding": "same"},  # even kernel: asymmetric recurrent pad
    {"filters": 2, "kernel_size": 3, "padding": "valid", "strides": (2, 1)},
    {"filters": 3, "kernel_size": 3, "padding": "same", "dilation_rate": 2},
    {"filters": 3, "kernel_size": 3, "activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"filters": 3, "kernel_size": 3, "use_bias": False, "return_sequences": True},
    {
        "filters": 3,
        "kernel_size": 3,
        "padding": "same",
        "return_sequences": True,
        "go_backwards": True,
    },
    {
        "filters": 3,
        "kernel_size": 3,
        "padding": "same",
        "return_state": True,
        "unit_forget_bias": False,
    },
    {
        "filters": 2,
        "kernel_size": 1,
        "return_sequences": True,
        "return_state": True,
        "go_backwards": True,
    },
]


def _keras_layer(kwargs, x_nhwc, rng):
    """A built Keras layer with random (non-default) weights, and those weights."""
    layer = keras.layers.ConvLSTM2D(**kwargs)
    layer(x_nhwc)  # build
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.3 for w in layer.get_weights()]
    layer.set_weights(weights)
    return layer, weights


def _to_numpy_channels_last(t):
    return np.moveaxis(t.detach().numpy(), -3, -1)  # (..., C, H, W) -> (..., H, W, C)


@pytest.mark.parametrize(
    "kwargs", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
)
def test_matches_keras_conv_lstm_2d(kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 9, 8, 3)).astype("float32")  # (B, T, H, W, C), Keras' layout
    layer, weights = _keras_layer(kwargs, x, rng)
    expected = layer(x)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]

    ours = ConvLSTM2d(3, **kwargs).load_keras_weights(*weights)
    with torch.no_grad():
        got = ours(torch.from_numpy(x).permute(0, 1, 4, 2, 3))  # (B, T, C, H, W)
    got = list(got) if isinstance(got, ConvLSTMOutput) else [got]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        e = keras.ops.convert_to_numpy(e)
        assert np.abs(e).max() > 1e-3  # a real signal, not two zero tensors
        np.testing.assert_allclose(_to_numpy_channels_last(g), e, rtol=1e-5, atol=1e-5)


def test_initial_state_and_weights_round_trip_match_keras():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6, 6, 2)).astype("float32")
    h0 = rng.standard_normal((2, 6, 6, 3)).astype("float32")
    c0 = rng.standard_normal((2, 6, 6, 3)).astype("float32")
    layer, weights = _keras_layer({"filters": 3, "kernel_size": 3, "padding": "same"}, x, rng)
    expected = keras.ops.convert_to_numpy(layer(x, initial_state=[h0, c0]))
    ours = ConvLSTM2d(2, 3, 3, padding="same").load_keras_weights(*weights)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    with torch.no_grad():
        got = ours(torch.from_numpy(x).permute(0, 1, 4, 2, 3), initial_state=(to_t(h0), to_t(c0)))
    np.testing.assert_allclose(_to_numpy_channels_last(got), expected, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(ours.keras_weights(), weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_default_initialisation_follows_keras():
    layer = ConvLSTM2d(3, 4, 3)
    bias = layer.cell.bias.detach()
    assert torch.equal(bias[4:8], torch.ones(4)) and torch.equal(bias[:4], torch.zeros(4))
    # the recurrent kernel, flattened the Keras way, is orthogonal
    flat = layer.cell.weight_hh.detach().permute(2, 3, 1, 0).reshape(-1, 16)  # (kh*kw*F, 4F)
    torch.testing.assert_close(flat.T @ flat, torch.eye(16), atol=1e-5, rtol=0)


def test_streaming_chunk_by_chunk_equals_one_call():
    layer = ConvLSTM2d(2, 4, 3, padding="same", return_sequences=True, return_state=True).eval()
    video = torch.randn(2, 9, 2, 7, 7)
    whole = layer(video)
    state, chunks = None, []
    for chunk in video.split([4, 1, 4], dim=1):
        out = layer(chunk, initial_state=state)
        chunks.append(out.output)
        state = (out.h, out.c)
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole.output)
    torch.testing.assert_close(state[1], whole.c)


def test_output_shapes():
    x = torch.randn(2, 6, 3, 11, 10)
    assert ConvLSTM2d(3, 5, 3)(x).shape == (2, 5, 9, 8)
    assert ConvLSTM2d(3, 5, 3, padding="same", strides=2)(x).shape == (2, 5, 6, 5)
    out = ConvLSTM2d(3, 5, 3, return_sequences=True, return_state=True)(x)
    assert out.output.shape == (2, 6, 5, 9, 8) and out.h.shape == out.c.shape == (2, 5, 9, 8)


def test_dropout_masks_are_drawn_once_per_call_and_off_in_eval(monkeypatch):
    import lrcn.nn.conv_lstm as module

    drawn = []
    original = module._dropout_masks

    def recording(like, p, count):
        masks = original(like, p, count)
        drawn.append(masks)
        return masks

    monkeypatch.setattr(module, "_dropout_masks", recording)
    layer = ConvLSTM2d(2, 3, 3, padding="same", dropout=0.4, recurrent_dropout=0.3)
    x = torch.randn(8, 6, 2, 5, 5)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    assert drawn == []  # no dropout at eval
    eval_out = layer(x)
    layer.train()
    train_out = layer(x)
    assert not torch.allclose(train_out, eval_out)
    # Keras: four masks (one per gate) over the input frame and four over the state, drawn once
    # for the whole sequence, not per step.
    assert [tuple(m.shape) for m in drawn] == [(4, 8, 2, 5, 5), (4, 8, 3, 5, 5)]
    for masks, p in zip(drawn, (0.4, 0.3), strict=True):
        assert masks.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])
        assert abs(float((masks == 0).float().mean()) - p) < 0.05
        assert not torch.equal(masks[0], masks[1])  # gates get different masks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": "full"}, "padding must be 'valid' or 'same'"),
        ({"strides": 2, "dilation_rate": 2}, "incompatible"),
        ({"activation": "mish"}, "unknown activation 'mish'"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvLSTM2d(3, 4, 3, **kwargs)


def test_bad_inputs_and_weights():
    layer = ConvLSTM2d(3, 4, 3)
    with pytest.raises(ValueError, match="in_channels=3 but the input has 2 channels"):
        layer(torch.randn(1, 2, 2, 8, 8))
    with pytest.raises(ValueError, match=r"expects \(B, T, C, H, W\)"):
        layer(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="smaller than"):
        layer(torch.randn(1, 2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"kernel should have shape \(3, 3, 3, 16\)"):
        layer.load_keras_weights(np.zeros((3, 3, 2, 16)), np.zeros((3, 3, 4, 16)), np.zeros(16))
    with pytest.raises(ValueError, match="pass Keras' bias"):
        layer.load_keras_weights(np.zeros((3, 3, 3, 16)), np.zeros((3, 3, 4, 16)))
