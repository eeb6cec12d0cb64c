"""Reusable recurrent and attention blocks, with PyTorch's argument names and batch-first shapes."""

from lrcn.nn.lstm import LSTM, RNN, LSTMCell, RNNCell

__all__ = ["LSTM", "RNN", "LSTMCell", "RNNCell"]
