"""ConvLSTMCell.step's in-place gate path (default sigmoid/tanh, no autograd) against the plain
ops: same outputs, same gradients, inputs left alone, and taken only where it is safe."""

import pytest
import torch

import lrcn.nn.conv_lstm as module
from lrcn.nn import ConvLSTM2d

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
TOL = {"rtol": 1e-6, "atol": 1e-6}


def _sigmoid(x):  # equal to torch.sigmoid but not it: forces the general path
    return torch.sigmoid(x)


def _tanh(x):
    return torch.tanh(x)


def _pair(device="cpu", **kwargs):
    """The default layer and one with the same weights that can only take the general path."""
    torch.manual_seed(0)
    fast = ConvLSTM2d(3, 5, 3, **kwargs).to(device)
    general = ConvLSTM2d(3, 5, 3, activation=_tanh, recurrent_activation=_sigmoid, **kwargs)
    general.load_state_dict(fast.state_dict())
    with torch.no_grad():  # a non-zero bias and large enough gates to saturate some units
        for layer in (fast, general):
            layer.cell.bias.copy_(torch.linspace(-2, 2, 20))
    return fast, general.to(device)


@pytest.fixture
def calls(monkeypatch):
    """Counts the in-place gate calls."""
    count = [0]
    original = module._default_gates_

    def counting(gates, c):
        count[0] += 1
        return original(gates, c)

    monkeypatch.setattr(module, "_default_gates_", counting)
    return count


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": "same"},
        {"padding": "valid", "strides": 2},
        {"padding": "same", "kernel_size": 2},  # even kernel: asymmetric recurrent padding
        {"padding": "same", "go_backwards": True, "return_state": True},
    ],
    ids=["same", "valid-strided", "even-kernel", "backwards-state"],
)
def test_in_place_step_equals_general_path(device, kwargs, calls):
    kwargs = dict(kwargs)  # shared between the parametrised devices
    kernel = kwargs.pop("kernel_size", 3)
    torch.manual_seed(1)
    fast = ConvLSTM2d(3, 5, kernel, return_sequences=True, **kwargs).to(device)
    general = ConvLSTM2d(
        3,
        5,
        kernel,
        return_sequences=True,
        activation=_tanh,
        recurrent_activation=_sigmoid,
        **kwargs,
    ).to(device)
    general.load_state_dict(fast.state_dict())
    x = torch.randn(2, 6, 3, 9, 8, device=device) * 2
    with torch.no_grad():
        out = fast(x)
        assert calls[0] == 6
        ref = general(x)
        assert calls[0] == 6  # the general path never takes it
    for a, b in zip(
        out if isinstance(out, tuple) else (out,),
        ref if isinstance(ref, tuple) else (ref,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, **TOL)


def test_in_place_step_is_bit_identical_to_plain_ops(calls):
    fast, _ = _pair(padding="same", return_sequences=True, return_state=True)
    plain, _ = _pair(padding="same", return_sequences=True, return_state=True)
    plain.cell.fast_gates = False
    x = torch.randn(3, 5, 3, 7, 7) * 3
    with torch.no_grad():
        a, b = fast(x), plain(x)
    assert calls[0] == 5
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_equal_general_path_and_match_no_grad_outputs(device, calls):
    fast, general = _pair(device, padding="same", return_sequences=True, return_state=True)
    x = torch.randn(2, 4, 3, 6, 6, device=device)
    with torch.no_grad():
        inference = fast(x)
    assert calls[0] == 4
    results = []
    for layer in (fast, general):
        xg = x.clone().requires_grad_()
        out = layer(xg)
        loss = (out.output * torch.linspace(-1, 1, 6, device=device)).sum() + out.c.pow(2).sum()
        loss.backward()
        results.append((out, xg.grad, [p.grad for p in layer.parameters()]))
    assert calls[0] == 4  # with autograd, the plain ops run
    (out_f, gx_f, gp_f), (out_g, gx_g, gp_g) = results
    for a, b, c in zip(out_f, out_g, inference, strict=True):
        torch.testing.assert_close(a, b, **TOL)
        torch.testing.assert_close(c, a.detach(), **TOL)
    torch.testing.assert_close(gx_f, gx_g, **TOL)
    for a, b in zip(gp_f, gp_g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_step_leaves_its_inputs_alone(calls):
    cell = ConvLSTM2d(3, 4, 3, padding="same").cell
    x_conv, h, c = torch.randn(2, 16, 5, 5), torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    copies = [t.clone() for t in (x_conv, h, c)]
    with torch.no_grad():
        h2, c2 = cell.step(x_conv, h, c)
        h3, c3 = cell.step(x_conv, h2, c2)
    assert calls[0] == 2
    for t, copy in zip((x_conv, h, c), copies, strict=True):
        assert torch.equal(t, copy)
    assert not torch.equal(h3, h2) and not torch.equal(c3, c2)


def test_no_autograd_needed_is_enough(calls):
    """Grad mode on but nothing requiring grad (frozen weights) takes the in-place path;
    inference_mode does too."""
    fast, general = _pair(padding="same")
    fast.requires_grad_(False)
    x = torch.randn(2, 3, 3, 6, 6)
    out = fast(x)
    assert calls[0] == 3 and out.grad_fn is None
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), out, rtol=0, atol=0)
    assert calls[0] == 6
    with torch.no_grad():
        torch.testing.assert_close(general(x), out, **TOL)


@pytest.mark.parametrize(
    "activations",
    [{"activation": "relu", "recurrent_activation": "hard_sigmoid"}, {"activation": "elu"}],
)
def test_other_activations_keep_the_general_path(activations, calls):
    layer = ConvLSTM2d(3, 4, 3, padding="same", **activations)
    x = torch.randn(2, 3, 3, 6, 6)
    with torch.no_grad():
        inference = layer(x)
    assert calls[0] == 0
    torch.testing.assert_close(inference, layer(x).detach(), rtol=0, atol=0)


def test_dropout_masks_path(calls):
    """Training with dropout records autograd (plain ops); without grad it takes the in-place
    path with the recurrent masks, and both agree for the same masks."""
    layer = ConvLSTM2d(3, 4, 3, padding="same", dropout=0.3, recurrent_dropout=0.4).train()
    x = torch.randn(2, 3, 3, 6, 6)
    torch.manual_seed(5)
    with_grad = layer(x)
    assert calls[0] == 0
    torch.manual_seed(5)
    with torch.no_grad():
        without = layer(x)
    assert calls[0] == 3
    torch.testing.assert_close(without, with_grad.detach(), **TOL)


@pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning", "ignore:`torch.jit.trace:FutureWarning"
)
def test_tracing_uses_the_plain_ops(calls):
    layer = ConvLSTM2d(3, 4, 3, padding="same").eval()
    x = torch.randn(1, 3, 3, 6, 6)
    with torch.no_grad():
        traced = torch.jit.trace(layer, x, check_trace=False)
        assert calls[0] == 0
        assert "sigmoid_" not in str(traced.inlined_graph)
        y = torch.randn(1, 3, 3, 6, 6)
        torch.testing.assert_close(traced(y), layer(y), **TOL)


def test_double_precision(calls):
    fast, general = _pair(padding="same", return_sequences=True)
    fast, general = fast.double(), general.double()
    x = torch.randn(2, 3, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), general(x), rtol=1e-12, atol=1e-12)
    assert calls[0] == 3
