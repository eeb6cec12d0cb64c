"""Shared test setup: Keras runs on the torch backend; one thread per xdist worker."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
