"""lrcn: CNN+LSTM computer vision (the Long-term Recurrent Convolutional Network family)."""

__version__ = "0.1.0"
