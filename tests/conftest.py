"""Shared test setup: Keras runs on the torch backend; one thread per xdist worker."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def order_ucf101(tmp_path_factory: pytest.TempPathFactory):
    """A small copy of the built-in order data set in the UCF-101 layout (written once)."""
    from lrcn.data.synthetic import write_order_ucf101

    root = tmp_path_factory.mktemp("order")
    return write_order_ucf101(root, num_groups=5, frames=20, size=32, seed=1)
