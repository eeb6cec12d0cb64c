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


# Untrained bundles, one per task, for tests of what runs a bundle (export, serve): the wiring
# and the numerics do not need learned weights, and building one takes a second, not a run.
_WORDS = ["a", "red", "green", "circle", "square", "is", "on", "the", "left", "what", "colour"]
_MODELS = {
    "activity": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 16, "dropout": 0.0},
    "captioning": {"name": "show_attend_tell", "backbone": "simple_cnn", "embed_size": 16,
                   "hidden_size": 16, "attention_size": 16, "dropout": 0.0},
    "vqa": {"name": "show_ask_attend_answer", "backbone": "simple_cnn", "embed_size": 16,
            "hidden_size": 16, "dropout": 0.0},
    "retrieval": {"name": "vse", "backbone": "simple_cnn", "embed_size": 16, "hidden_size": 16,
                  "joint_size": 16},
    "video_captioning": {"name": "temporal_attention", "backbone": "simple_cnn",
                         "embed_size": 16, "hidden_size": 16, "dropout": 0.0},
    "next_frame": {"name": "convlstm_encoder_forecaster", "filters": [8], "patch_size": 4},
    "video_tuples": {"name": "tuple_heads", "backbone": "simple_cnn", "inputs": "rgb+flow",
                     "hidden_size": 16, "dropout": 0.0},
}  # fmt: skip
_DATA = {
    "activity": {"format": "ucf101", "root": "UCF-101", "clip_len": 4, "stride": 4},
    "captioning": {"format": "flickr8k", "root": "flickr"},
    "vqa": {"format": "vqa", "root": "vqa"},
    "retrieval": {"format": "flickr8k", "root": "flickr"},
    "video_captioning": {"format": "msrvtt", "root": "msrvtt", "frames": 4},
    "next_frame": {"format": "moving_mnist", "train": "train.npy", "test": "test.npy",
                   "context": 4, "horizon": 2},
    "video_tuples": {"format": "msrvtt", "root": "msrvtt", "frames": 4},
}  # fmt: skip


def _extras(task):
    from lrcn.data.formats.tuples import TupleSlots
    from lrcn.data.vocab import Vocabulary
    from lrcn.models.activity import ActivityExtras
    from lrcn.models.captioning import CaptioningExtras, VocabularyData
    from lrcn.models.next_frame import NextFrameExtras
    from lrcn.models.retrieval import RetrievalExtras
    from lrcn.models.video_captioning import VideoCaptioningExtras
    from lrcn.models.video_tuples import VideoTupleExtras
    from lrcn.models.vqa import VqaExtras

    vocab = Vocabulary.build([_WORDS], min_count=1)
    return {
        "activity": lambda: ActivityExtras(classes=["jump", "run", "wave"]),
        "captioning": lambda: CaptioningExtras.of(vocab),
        "vqa": lambda: VqaExtras.of(vocab, ["red", "green", "yes", "no"]),
        "retrieval": lambda: RetrievalExtras(vocab=VocabularyData(**vocab.to_dict())),
        "video_captioning": lambda: VideoCaptioningExtras(vocab=VocabularyData(**vocab.to_dict())),
        "next_frame": lambda: NextFrameExtras(channels=1, size=32, context=4, horizon=2),
        "video_tuples": lambda: VideoTupleExtras(
            slots=TupleSlots.given(
                {"object": ["circle", "square"], "colour": ["red", "blue"]}
            ).to_dict()
        ),
    }[task]()


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory):
    """``untrained_run(task)``: a run folder whose ``best/`` holds an untrained bundle of a
    small model of ``task`` (built once per session and task)."""
    from lrcn.checkpoint import save_bundle
    from lrcn.models import build_model
    from lrcn.tasks import get_task

    made = {}

    def make(task):
        if task not in made:
            torch.manual_seed(0)
            root = tmp_path_factory.mktemp(f"untrained-{task}")
            config = {"task": task, "data": dict(_DATA[task]), "model": _MODELS[task],
                      "train": {"device": "cpu"}}  # fmt: skip
            extras = _extras(task)
            model = build_model(config["model"], extras, pretrained=False)
            if task == "next_frame":
                model.start_at_mean(0.2)
            preprocess = get_task(task).preprocess(model)
            save_bundle(root / "run" / "best", model, config, extras, preprocess, epoch=0)
            made[task] = root / "run"
        return made[task]

    return make


@pytest.fixture(scope="session")
def sample_media(tmp_path_factory, order_ucf101):
    """A photo (``image``: PNG), the same photo as JPEG (``jpeg``) and a short video
    (``video``: an .avi of the order data set) for tests that upload or predict files."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "photo.png")
    Image.fromarray(pixels).save(folder / "photo.jpg", quality=90)
    video = next(p for p in sorted(order_ucf101.rglob("*")) if p.suffix in (".avi", ".mp4"))
    return {"image": folder / "photo.png", "jpeg": folder / "photo.jpg", "video": video}
