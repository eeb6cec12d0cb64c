"""lrcn.nn.LSTM / RNN / cells against torch.nn with the same weights: outputs and gradients."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lrcn.nn import LSTM, RNN, LSTMCell, RNNCell

TOL = {"rtol": 1e-5, "atol": 1e-5}
IMPLS = ["fused", "reference"]


def _pair(kind, impl, **kw):
    """A torch.nn module and ours with the torch module's weights loaded."""
    ref = nn.LSTM(**kw) if kind == "lstm" else nn.RNN(**kw)
    ours = (LSTM if kind == "lstm" else RNN)(**kw, implementation=impl)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _loss(out, state):
    """A loss that weighs every output and every final state differently."""
    states = state if isinstance(state, tuple) else (state,)
    total = (out * torch.linspace(-1, 1, out.shape[-1])).sum()
    for k, s in enumerate(states):
        total = total + (k + 2) * s.pow(2).sum()
    return total


def _assert_same_run(ref, ours, x, hx=None):
    """Forward + backward through both; compare outputs, states and every gradient."""
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    hx_ref = hx_ours = None
    if hx is not None:
        hx_ref = tuple(h.clone().requires_grad_(True) for h in hx)
        hx_ours = tuple(h.clone().requires_grad_(True) for h in hx)
    if isinstance(ref, nn.RNN):
        hx_ref = None if hx_ref is None else hx_ref[0]
        hx_ours = None if hx_ours is None else hx_ours[0]
    out_r, st_r = ref(x_ref, hx_ref)
    out_o, st_o = ours(x_ours, hx_ours)
    torch.testing.assert_close(out_o, out_r, **TOL)
    for a, b in zip(
        st_o if isinstance(st_o, tuple) else (st_o,),
        st_r if isinstance(st_r, tuple) else (st_r,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, **TOL)
    _loss(out_r, st_r).backward()
    _loss(out_o, st_o).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
    if hx is not None:
        for a, b in zip(
            hx_ours if isinstance(hx_ours, tuple) else (hx_ours,),
            hx_ref if isinstance(hx_ref, tuple) else (hx_ref,),
            strict=True,
        ):
            torch.testing.assert_close(a.grad, b.grad, **TOL)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, **TOL, msg=name)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "batch_first", "bias"),
    [
        (1, False, False, True),
        (1, True, True, True),
        (2, False, True, False),
        (2, True, False, True),
        (3, True, True, True),
        (3, False, False, True),
    ],
)
def test_matches_torch_outputs_and_gradients(
    kind, impl, num_layers, bidirectional, batch_first, bias
):
    ref, ours = _pair(
        kind, impl, input_size=7, hidden_size=5, num_layers=num_layers, bias=bias,
        batch_first=batch_first, bidirectional=bidirectional,
    )  # fmt: skip
    batch, steps = 4, 9
    x = torch.randn(batch, steps, 7) if batch_first else torch.randn(steps, batch, 7)
    _assert_same_run(ref, ours, x)
    # with a given initial state, whose gradient is compared too
    d = 2 if bidirectional else 1
    hx = (torch.randn(num_layers * d, batch, 5), torch.randn(num_layers * d, batch, 5))
    ref.zero_grad()
    ours.zero_grad()
    _assert_same_run(ref, ours, x, hx)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("steps", "input_size", "hidden_size"), [(1, 3, 2), (32, 16, 24), (48, 40, 64)]
)
def test_lstm_matches_torch_at_other_shapes(impl, steps, input_size, hidden_size):
    ref, ours = _pair(
        "lstm", impl, input_size=input_size, hidden_size=hidden_size, num_layers=2, batch_first=True
    )
    _assert_same_run(ref, ours, torch.randn(6, steps, input_size))


@pytest.mark.parametrize("impl", IMPLS)
def test_unbatched_input_matches_torch(impl):
    ref, ours = _pair("lstm", impl, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3)  # (T, I)
    out_r, (_, c_r) = ref(x)
    out_o, (h_o, c_o) = ours(x)
    assert out_o.shape == (5, 8) and h_o.shape == (4, 4)
    torch.testing.assert_close(out_o, out_r, **TOL)
    torch.testing.assert_close(c_o, c_r, **TOL)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_variable_lengths_match_packed_torch(kind, impl, bidirectional):
    ref, ours = _pair(
        kind,
        impl,
        input_size=5,
        hidden_size=3,
        num_layers=2,
        batch_first=True,
        bidirectional=bidirectional,
    )
    lengths = torch.tensor([7, 2, 5, 1, 7])
    x = torch.randn(5, 7, 5)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_r, st_r = ref(packed)
    padded_r, _ = pad_packed_sequence(out_r, batch_first=True, total_length=7)

    # 1. a PackedSequence in, a PackedSequence out with the same layout
    out_p, st_p = ours(packed)
    assert torch.equal(out_p.batch_sizes, out_r.batch_sizes)
    torch.testing.assert_close(out_p.data, out_r.data, **TOL)
    # 2. a padded batch with `lengths`: padded outputs are exactly zero, states at each length
    out_l, st_l = ours(x, lengths=lengths)
    torch.testing.assert_close(out_l, padded_r, **TOL)
    assert torch.all(out_l[1, 2:] == 0) and torch.all(out_l[3, 1:] == 0)
    states_r = st_r if isinstance(st_r, tuple) else (st_r,)
    for st in (st_p, st_l):
        for a, b in zip(st if isinstance(st, tuple) else (st,), states_r, strict=True):
            torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("impl", IMPLS)
def test_lengths_gradients_match_packed_torch(impl):
    ref, ours = _pair(
        "lstm", impl, input_size=4, hidden_size=3, batch_first=True, bidirectional=True
    )
    lengths = torch.tensor([3, 6, 1])
    x_r = torch.randn(3, 6, 4, requires_grad=True)
    x_o = x_r.detach().clone().requires_grad_(True)
    out_r, (h_r, _) = ref(
        pack_padded_sequence(x_r, lengths, batch_first=True, enforce_sorted=False)
    )
    padded_r, _ = pad_packed_sequence(out_r, batch_first=True, total_length=6)
    out_o, (h_o, _) = ours(x_o, lengths=lengths)
    (padded_r.sum() + h_r.pow(2).sum()).backward()
    (out_o.sum() + h_o.pow(2).sum()).backward()
    torch.testing.assert_close(x_o.grad, x_r.grad, **TOL)
    assert torch.all(x_o.grad[2, 1:] == 0)  # padding receives no gradient


def test_state_dict_loads_both_ways():
    ours = LSTM(6, 4, num_layers=2, bidirectional=True)
    ref = nn.LSTM(6, 4, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert all(ours.state_dict()[k].shape == v.shape for k, v in ref.state_dict().items())
    ref.load_state_dict(ours.state_dict())  # ours -> torch
    x = torch.randn(3, 2, 6)
    torch.testing.assert_close(ref(x)[0], ours(x)[0], **TOL)


def test_both_implementations_agree_with_each_other():
    fused = LSTM(5, 6, num_layers=3, batch_first=True, bidirectional=True)
    ref = LSTM(5, 6, num_layers=3, batch_first=True, bidirectional=True, implementation="reference")
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(2, 11, 5)
    torch.testing.assert_close(ref(x)[0], fused(x)[0], **TOL)


@pytest.mark.parametrize("impl", IMPLS)
def test_dropout_acts_between_layers_in_training_only(impl):
    lstm = LSTM(4, 8, num_layers=2, dropout=0.5, batch_first=True, implementation=impl)
    plain = LSTM(4, 8, num_layers=2, batch_first=True, implementation=impl)
    plain.load_state_dict(lstm.state_dict())
    x = torch.randn(16, 5, 4)
    lstm.eval()
    torch.testing.assert_close(lstm(x)[0], plain(x)[0])  # no dropout at eval
    lstm.train()
    a, b = lstm(x)[0], lstm(x)[0]
    assert not torch.allclose(a, b)  # fresh masks each call
    assert not torch.allclose(a, plain(x)[0])


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        LSTM(3, 3, dropout=0.2)


@pytest.mark.parametrize("cell_cls,ref_cls", [(LSTMCell, nn.LSTMCell), (RNNCell, nn.RNNCell)])
def test_cells_match_torch(cell_cls, ref_cls):
    ref = ref_cls(5, 7)
    ours = cell_cls(5, 7)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    if cell_cls is LSTMCell:
        hx = (torch.randn(3, 7), torch.randn(3, 7))
        h_o, c_o = ours(x, hx)
        h_r, c_r = ref(xr, hx)
        torch.testing.assert_close(c_o, c_r, **TOL)
        # unbatched
        torch.testing.assert_close(ours(x[0].detach())[0], ref(xr[0].detach())[0], **TOL)
    else:
        h_o, h_r = ours(x), ref(xr)
    torch.testing.assert_close(h_o, h_r, **TOL)
    h_o.sum().backward()
    h_r.sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, **TOL)


def test_lstm_cell_step_equals_one_layer_lstm():
    """Running LSTMCell over time is the same recurrence as LSTM."""
    lstm = LSTM(4, 6, batch_first=True)
    cell = LSTMCell(4, 6)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in lstm.state_dict().items()})
    x = torch.randn(2, 5, 4)
    state = None
    for t in range(5):
        state = cell(x[:, t], state)
    _, (h, c) = lstm(x)
    torch.testing.assert_close(state[0], h[0], **TOL)
    torch.testing.assert_close(state[1], c[0], **TOL)


@pytest.mark.parametrize(
    ("kwargs", "call", "message"),
    [
        ({"input_size": 0, "hidden_size": 3}, None, "input_size must be a positive integer"),
        ({"input_size": 3, "hidden_size": 3, "num_layers": 0}, None, "num_layers"),
        (
            {"input_size": 3, "hidden_size": 3, "implementation": "cudnn"},
            None,
            "'fused' or 'reference'",
        ),
        (
            {"input_size": 3, "hidden_size": 3},
            {"input": torch.randn(2, 4, 5)},
            "input_size=3 but the input's last dimension is 5",
        ),
        (
            {"input_size": 3, "hidden_size": 3},
            {"input": torch.randn(4, 2, 3), "hx": (torch.zeros(1, 3, 3), torch.zeros(1, 3, 3))},
            r"h0 must have shape \(1, 2, 3\)",
        ),
        (
            {"input_size": 3, "hidden_size": 3, "batch_first": True},
            {"input": torch.randn(2, 4, 3), "lengths": [4, 5]},
            r"every length must be in 1..4",
        ),
        (
            {"input_size": 3, "hidden_size": 3, "batch_first": True},
            {"input": torch.randn(2, 4, 3), "lengths": [4]},
            r"lengths must have shape \(2,\)",
        ),
    ],
)
def test_bad_arguments_get_specific_errors(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        lstm = LSTM(**kwargs)
        lstm(**call)


@pytest.mark.parametrize("impl", IMPLS)
def test_packed_input_with_wrong_feature_size_is_named(impl):
    lstm = LSTM(3, 2, batch_first=True, implementation=impl)
    packed = pack_padded_sequence(torch.randn(2, 4, 5), [4, 2], batch_first=True)
    with pytest.raises(ValueError, match="input_size=3 but the input's last dimension is 5"):
        lstm(packed)
    with pytest.raises(ValueError, match="either a PackedSequence or `lengths`"):
        lstm(pack_padded_sequence(torch.randn(2, 4, 3), [4, 2], batch_first=True), lengths=[4, 2])


def test_every_combination_of_flags_runs_both_paths():
    """A smoke sweep over flags not covered above: both paths give the same shapes and values."""
    for bias, bf, bi in itertools.product([True, False], repeat=3):
        fused = LSTM(3, 2, num_layers=2, bias=bias, batch_first=bf, bidirectional=bi)
        ref = LSTM(
            3,
            2,
            num_layers=2,
            bias=bias,
            batch_first=bf,
            bidirectional=bi,
            implementation="reference",
        )
        ref.load_state_dict(fused.state_dict())
        x = torch.randn(4, 3, 3)
        torch.testing.assert_close(ref(x)[0], fused(x)[0], **TOL)
