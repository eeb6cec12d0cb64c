"""Reusable recurrent and attention blocks, with PyTorch's argument names."""

from lrcn.nn.attention import AttentionOutput, SoftAttention, TemporalAttention
from lrcn.nn.conv_lstm import ConvLSTM2d, ConvLSTMCell, ConvLSTMOutput
from lrcn.nn.lstm import LSTM, RNN, LSTMCell, RNNCell
from lrcn.nn.standardize import Standardize
from lrcn.nn.time_distributed import TimeDistributed

__all__ = [
    "LSTM",
    "RNN",
    "AttentionOutput",
    "ConvLSTM2d",
    "ConvLSTMCell",
    "ConvLSTMOutput",
    "LSTMCell",
    "RNNCell",
    "SoftAttention",
    "Standardize",
    "TemporalAttention",
    "TimeDistributed",
]
