"""``lrcn serve`` as a client sees it: a real uvicorn on a loopback port, driven with httpx.

The happy paths run untrained bundles of two tasks (captioning reads images, activity reads
videos); the limits that need a predictor to stay busy (a full queue, a timeout) run
in-memory stand-ins that block on an event the test controls, so they are deterministic.
The micro-batcher, the type sniffing and the multipart reader also get unit tests here.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from lrcn.config import ConfigError
from lrcn.serve.app import (
    ServeError,
    ServeSettings,
    check_bind,
    create_app,
    is_loopback,
    load_models,
    model_names,
    serve,
)
from lrcn.serve.batching import Batcher, QueueFull
from lrcn.serve.loadgen import background_server
from lrcn.serve.uploads import UploadError, read_form, sniff

LIMIT = 1_000_000  # bytes: the upload limit of the real-model server
TOKEN = "s3cret-token"


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _entries(app: Any) -> list[str]:
    return sorted(p.name for p in Path(app.state.upload_dir).iterdir())


# --------------------------------------------------------------------------------------------
# The server with real (untrained) models
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(untrained_run) -> Iterator[tuple[str, Any]]:
    """(base URL, app) of a server with captioning (images) and activity (videos)."""
    loaded = load_models([untrained_run("captioning"), untrained_run("activity")])
    models = dict(zip(["captioning", "activity"], loaded.values(), strict=True))
    app = create_app(models, ServeSettings(max_upload_bytes=LIMIT, timeout_s=30))
    with background_server(app) as url:
        yield url, app
    assert not Path(app.state.upload_dir).exists(), "the upload folder outlived the server"


@pytest.fixture
def client(real) -> Iterator[httpx.Client]:
    """A client of the real-model server; after the test, its upload folder must be empty."""
    url, app = real
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c
    assert _wait_until(lambda: not _entries(app)), f"left in the upload folder: {_entries(app)}"


def _post(c: httpx.Client, model: str, files: list[tuple[str, bytes]], **fields: str):
    return c.post(
        f"/v1/models/{model}/predict",
        files=[("file", (name, data)) for name, data in files],
        data=fields,
    )


def test_healthz_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert {n: (m["task"], m["input"]) for n, m in models.items()} == {
        "captioning": ("captioning", "image"),
        "activity": ("activity", "video"),
    }
    assert {o["name"] for o in models["captioning"]["options"]} == {"beam", "n_best", "attention"}
    assert models["activity"]["labels"] == ["jump", "run", "wave"]


def test_predict_images_reports_the_uploaded_names(client, sample_media):
    png, jpeg = sample_media["image"].read_bytes(), sample_media["jpeg"].read_bytes()
    response = _post(client, "captioning", [("cat.png", png), ("dog.jpg", jpeg)], beam="2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "captioning" and body["task"] == "captioning"
    assert [r["input"] for r in body["results"]] == ["cat.png", "dog.jpg"]
    assert all(isinstance(r["caption"], str) and "error" not in r for r in body["results"])
    assert set(body["timing"]) == {"queue_ms", "predict_ms", "batch_size"}
    assert body["timing"]["batch_size"] == 2


def test_predict_video(client, sample_media):
    response = _post(
        client, "activity", [("clip.avi", sample_media["video"].read_bytes())], top="2"
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["input"] == "clip.avi"
    assert [t["class"] for t in result["top"]] != [] and len(result["top"]) == 2


def test_attention_comes_back_inline_and_no_server_path_leaks(client, real, sample_media):
    png = sample_media["image"].read_bytes()
    response = _post(client, "captioning", [("cat.png", png)], attention="true")
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    prefix = "data:image/png;base64,"
    assert result["attention"].startswith(prefix)
    drawn = Image.open(io.BytesIO(base64.b64decode(result["attention"][len(prefix) :])))
    assert drawn.format == "PNG" and drawn.width > 50
    text = response.text
    for secret in (str(real[1].state.upload_dir), "/tmp/", "lrcn-serve-", "input-0"):
        assert secret not in text


def test_upload_too_large_with_content_length(client, sample_media):
    big = sample_media["image"].read_bytes() + bytes(LIMIT)
    response = _post(client, "captioning", [("big.png", big)])
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]


def test_upload_too_large_without_content_length(client, sample_media):
    head = sample_media["image"].read_bytes()

    def body() -> Iterator[bytes]:  # a generator: sent chunked, no Content-Length
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        yield head
        for _ in range(LIMIT // 65536 + 2):
            yield bytes(65536)
        yield b"\r\n--xx--\r\n"

    response = client.post(
        "/v1/models/captioning/predict",
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_limit_is_checked_while_the_body_arrives(client, real, sample_media):
    """A client that never finishes its body still gets 413 once it has sent too much."""
    host, port = real[0].removeprefix("http://").split(":")
    part = (
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + sample_media["image"].read_bytes()
    )
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /v1/models/captioning/predict HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=xx\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        for chunk in [part] + [bytes(65536)] * (LIMIT // 65536 + 1):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        assert sent > LIMIT
        reply = s.recv(4096)  # the final chunk was never sent: only the limit can answer
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]


@pytest.mark.parametrize(
    ("model", "name", "media", "expected"),
    [
        ("captioning", "clip.png", "video", "expects an image"),  # a video to an image model
        ("activity", "photo.avi", "image", "expects a video"),  # and the other way round
        ("captioning", "photo.jpg", "text", "not an image or video"),  # a name proves nothing
    ],
)
def test_wrong_kind_of_file_is_415(client, sample_media, model, name, media, expected):
    data = b"just some text, honest\n" * 4 if media == "text" else sample_media[media].read_bytes()
    response = _post(client, model, [(name, data)])
    assert response.status_code == 415
    assert expected in response.json()["detail"] and name in response.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "with_file", "expected"),
    [
        ({"nope": "1"}, True, "unknown form field 'nope'"),
        ({"beam": "two"}, True, "form field 'beam'"),
        ({"beam": "0"}, True, "less than 1"),
        ({"attention": "maybe"}, True, "form field 'attention'"),
        ({"beam": "2"}, False, "no file"),
    ],
)
def test_validation_errors_are_422(client, sample_media, fields, with_file, expected):
    files = [("file", ("a.png", sample_media["image"].read_bytes()))] if with_file else None
    response = client.post("/v1/models/captioning/predict", files=files, data=fields)
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


def test_missing_file_in_a_multipart_form_is_422(client):
    body = b'--xx\r\nContent-Disposition: form-data; name="beam"\r\n\r\n2\r\n--xx--\r\n'
    response = client.post(
        "/v1/models/captioning/predict",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert response.status_code == 422 and "no file" in response.json()["detail"]


def test_unreadable_file_is_its_result_or_422_alone(client, sample_media):
    png = sample_media["image"].read_bytes()
    broken = png[:200]  # sniffs as PNG, but Pillow cannot decode it
    both = _post(client, "captioning", [("good.png", png), ("broken.png", broken)])
    assert both.status_code == 200
    good, bad = both.json()["results"]
    assert "caption" in good and bad["input"] == "broken.png" and "error" in bad
    alone = _post(client, "captioning", [("broken.png", broken)])
    assert alone.status_code == 422 and "broken.png" in alone.json()["detail"]
    assert "/tmp/" not in alone.text


def test_unknown_model_is_404_naming_the_known(client, sample_media):
    response = _post(client, "nope", [("a.png", sample_media["image"].read_bytes())])
    assert response.status_code == 404
    assert "captioning" in response.json()["detail"] and "activity" in response.json()["detail"]


def test_metrics(client, sample_media):
    _post(client, "activity", [("clip.avi", sample_media["video"].read_bytes())])
    _post(client, "activity", [("clip.avi", b"not a video at all")])
    text = client.get("/metrics").text
    ok = re.search(r'lrcn_serve_requests_total\{code="200",model="activity"\} (\d+)', text)
    assert ok and int(ok.group(1)) >= 1
    assert re.search(r'lrcn_serve_requests_total\{code="415",model="activity"\} [1-9]', text)
    assert 'lrcn_serve_queue_depth{model="activity"} 0.0' in text
    assert 'lrcn_serve_queue_depth{model="captioning"} 0.0' in text
    assert re.search(r'lrcn_serve_uploads_rejected_total\{reason="unsupported_type"\} [1-9]', text)
    assert 'lrcn_serve_request_seconds_count{model="activity"}' in text
    assert 'lrcn_serve_batch_size_count{model="activity"}' in text


# --------------------------------------------------------------------------------------------
# Stand-in predictors: limits that need a model to stay busy, errors, output files
# --------------------------------------------------------------------------------------------


class Gate:
    """A predictor that records its calls and blocks until ``release`` is set."""

    def __init__(self, kind: str = "image") -> None:
        self.kind = kind
        self.calls: list[list[Path]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, inputs, options=None):
        self.calls.append(list(inputs))
        self.started.set()
        self.release.wait(20)
        return [{"input": str(p), "label": "ok"} for p in inputs]

    def describe(self) -> dict[str, Any]:
        return {"task": "fake", "input": self.kind, "options": []}


class Scripted:
    """A predictor whose ``mode`` option picks what it does: raise a user error, crash, fail
    every input, or write output files (one named in the result, one only in the folder)."""

    def __call__(self, inputs, options=None):
        options = options or {}
        mode = options.get("mode", "ok")
        if mode == "config":
            raise ConfigError(f"{inputs[0]}", "cannot use this file", expected="another file")
        if mode == "crash":
            raise RuntimeError("bug\nwith a second line")
        if mode == "fail":
            return [{"input": str(p), "error": f"{p}: unreadable"} for p in inputs]
        results = []
        for p in inputs:
            result: dict[str, Any] = {"input": str(p), "label": "ok", "score": float("nan")}
            if options.get("strip"):
                Image.new("RGB", (4, 4), "red").save(options["strip"])
                result["strip"] = str(options["strip"])
            if options.get("frames"):
                Image.new("RGB", (2, 2)).save(options["frames"] / f"{p.stem}-extra.png")
            results.append(result)
        return results

    def describe(self) -> dict[str, Any]:
        option = {"help": "", "min": None, "output": None}
        return {
            "task": "fake",
            "input": "image",
            "options": [
                {**option, "name": "mode", "type": "str"},
                {**option, "name": "strip", "type": "bool", "output": ".png"},
                {**option, "name": "frames", "type": "bool", "output": "dir"},
            ],
        }


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, "PNG")
    return out.getvalue()


def _send(url: str, model: str, token: str | None = None, **fields: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{url}/v1/models/{model}/predict",
        files=[("file", ("a.png", _png()))],
        data=fields,
        headers=headers,
        timeout=20,
    )


def test_full_queue_is_503_with_retry_after_at_once():
    gate = Gate()
    app = create_app({"slow": gate}, ServeSettings(queue=1, workers=1, batch_window_s=0))
    with background_server(app) as url, ThreadPoolExecutor(2) as pool:
        running = pool.submit(_send, url, "slow")
        assert gate.started.wait(10)
        queued = pool.submit(_send, url, "slow")
        depth_one = 'lrcn_serve_queue_depth{model="slow"} 1.0'
        assert _wait_until(lambda: depth_one in httpx.get(f"{url}/metrics").text)
        started = time.monotonic()
        refused = _send(url, "slow")
        assert time.monotonic() - started < 2
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json()["detail"]
        assert httpx.get(f"{url}/healthz").status_code == 200  # the loop is not blocked
        gate.release.set()
        assert running.result().status_code == 200 and queued.result().status_code == 200
        assert len(gate.calls) == 2
        assert _wait_until(lambda: not _entries(app))


def test_timeout_is_504_and_the_folder_goes_when_the_work_ends():
    gate = Gate()
    app = create_app({"slow": gate}, ServeSettings(queue=4, workers=1, timeout_s=0.5))
    with background_server(app) as url, ThreadPoolExecutor(1) as pool:
        running = pool.submit(_send, url, "slow")
        assert gate.started.wait(10)
        queued = _send(url, "slow")  # waits behind the blocked call, then gives up
        assert queued.status_code == 504 and "0.5 s" in queued.json()["detail"]
        assert running.result().status_code == 504
        # the queued request was dropped (its folder too); the running one still holds its own
        assert len(_entries(app)) == 1
        gate.release.set()
        assert _wait_until(lambda: not _entries(app))
        assert len(gate.calls) == 1, "a request that timed out in the queue was still predicted"


def test_user_errors_crashes_and_outputs_of_predict():
    app = create_app({"fake": Scripted()})
    with background_server(app) as url:
        user = _send(url, "fake", mode="config")
        assert user.status_code == 422
        assert user.json()["detail"].startswith("a.png: cannot use this file")
        assert "lrcn-serve-" not in user.text
        crash = _send(url, "fake", mode="crash")
        assert crash.status_code == 500
        assert crash.json() == {"detail": "internal error (RuntimeError); see the server log"}
        failed = _send(url, "fake", mode="fail")
        assert failed.status_code == 422 and failed.json()["detail"] == "a.png: unreadable"
        made = _send(url, "fake", strip="on", frames="1")
        assert made.status_code == 200, made.text
        body = made.json()
        (result,) = body["results"]
        assert result["strip"].startswith("data:image/png;base64,")
        assert result["score"] is None  # NaN is not JSON
        assert list(body["files"]) == ["frames/input-0-extra.png"]
        assert body["files"]["frames/input-0-extra.png"].startswith("data:image/png;base64,")
        assert _wait_until(lambda: not _entries(app))


# --------------------------------------------------------------------------------------------
# The token, the bind check, the page, the command
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[str]:
    static = tmp_path_factory.mktemp("static")
    (static / "index.html").write_text("<!doctype html><title>lrcn</title>")
    (static / "app.js").write_text("console.log('hi')")
    app = create_app({"fake": Scripted()}, ServeSettings(token=TOKEN), static_dir=static)
    with background_server(app) as url:
        yield url


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_token_missing_or_wrong_is_401(guarded, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/v1/models/fake/predict"),
    ):
        response = httpx.request(method, guarded + path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert "token" in response.json()["detail"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_right_token_and_open_routes(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{guarded}/v1/models", headers=auth).status_code == 200
    assert _send(guarded, "fake", token=TOKEN).status_code == 200
    assert httpx.get(f"{guarded}/healthz").json() == {"status": "ok", "models": 1}
    page = httpx.get(f"{guarded}/")
    assert page.status_code == 200 and "<title>lrcn</title>" in page.text
    assert httpx.get(f"{guarded}/static/app.js").text == "console.log('hi')"


def test_missing_page_is_404(tmp_path):
    app = create_app({"fake": Scripted()}, static_dir=tmp_path / "none")
    with background_server(app) as url:
        response = httpx.get(f"{url}/")
        assert response.status_code == 404 and "index.html" in response.json()["detail"]
        assert httpx.get(f"{url}/static/app.js").status_code == 404


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
)  # fmt: skip
def test_public_host_needs_a_token(host, loopback):
    assert is_loopback(host) is loopback
    check_bind(host, "a-token")  # with a token, any host
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(ServeError, match=r"--token") as err:
            check_bind(host, None)
        assert "\n" not in str(err.value)


def test_model_names(tmp_path):
    paths = [tmp_path / "a" / "run", tmp_path / "b" / "run" / "best", tmp_path / "c" / "last"]
    assert model_names(paths) == ["run", "run-2", "c"]
    assert model_names([tmp_path / "x", tmp_path / "y" / "x", tmp_path / "x"]) == [
        "x",
        "x-2",
        "x-3",
    ]


def test_a_busy_port_fails_before_any_model_loads(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError, match=rf"--port {port}: cannot listen") as err:
            serve([tmp_path / "no-such-run"], port=port)  # the run is never opened
    assert "\n" not in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_refuses_a_public_host_without_a_token(untrained_run):
    env = {k: v for k, v in os.environ.items() if k != "LRCN_TOKEN"}
    run = untrained_run("activity")
    done = subprocess.run(
        [sys.executable, "-m", "lrcn", "serve", str(run), "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0" in lines[0] and "--token" in lines[0]


def test_command_serves_with_the_token_from_the_environment(untrained_run, tmp_path):
    port = _free_port()
    env = {**os.environ, "LRCN_TOKEN": TOKEN, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "lrcn", "serve", str(untrained_run("activity")),
               "--port", str(port), "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"http://127.0.0.1:{port}" in line and "run (activity)" in line, line
        url = f"http://127.0.0.1:{port}"
        assert _wait_until(lambda: _reachable(url), timeout=20)
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
        assert [m["name"] for m in models.json()["models"]] == ["run"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("lrcn-serve-")] != []
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lrcn-serve-")]


def _reachable(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------------------------
# Micro-batching, sniffing and the multipart reader, without HTTP
# --------------------------------------------------------------------------------------------


class Recorder:
    """A predictor that records each call's inputs and options; options["boom"] raises."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[list[Path], dict[str, Any]]] = []
        self.delay = delay

    def __call__(self, inputs, options):
        self.calls.append((list(inputs), dict(options)))
        time.sleep(self.delay)
        if options.get("boom"):
            raise ValueError("boom")
        return [{"input": str(p), "top": options.get("top")} for p in reversed(inputs)]


def _batcher(predict, **kwargs) -> Batcher:
    batcher = Batcher(predict, **kwargs)
    batcher.start()
    return batcher


def test_requests_in_the_window_share_a_call_and_get_their_own_results():
    recorder = Recorder()
    batcher = _batcher(recorder, workers=1, window_s=0.3, max_batch=16)
    try:
        jobs = [[Path(f"/r{n}/a.png"), Path(f"/r{n}/b.png")] if n % 2 else [Path(f"/r{n}/a.png")]
                for n in range(8)]  # fmt: skip
        futures = [batcher.submit(inputs, {"top": 3}) for inputs in jobs]
        outcomes = [f.result(timeout=5) for f in futures]
    finally:
        batcher.close()
    assert len(recorder.calls) < 8
    assert sorted(str(p) for inputs, _ in recorder.calls for p in inputs) == sorted(
        str(p) for inputs in jobs for p in inputs
    )
    for inputs, (results, timing) in zip(jobs, outcomes, strict=True):
        assert sorted(r["input"] for r in results) == sorted(str(p) for p in inputs)
        assert timing.batch_size == 12 and timing.queue_s >= 0  # one call of all 12 files


def test_different_options_are_separate_calls():
    recorder = Recorder()
    batcher = _batcher(recorder, workers=1, window_s=0.2)
    try:
        futures = [batcher.submit([Path(f"/r{n}.png")], {"top": n % 2}) for n in range(6)]
        outcomes = [f.result(timeout=5) for f in futures]
    finally:
        batcher.close()
    assert len(recorder.calls) == 2
    for inputs, options in recorder.calls:
        assert {int(p.stem[1:]) % 2 for p in inputs} == {options["top"]}
    for n, (results, _) in enumerate(outcomes):
        assert results == [{"input": f"/r{n}.png", "top": n % 2}]


def test_an_exception_fails_only_its_own_call():
    batcher = _batcher(Recorder(), workers=2, window_s=0.2)
    try:
        bad = [batcher.submit([Path(f"/bad{n}.png")], {"boom": True}) for n in range(3)]
        good = [batcher.submit([Path(f"/good{n}.png")], {}) for n in range(3)]
        for future in bad:
            with pytest.raises(ValueError, match="boom"):
                future.result(timeout=5)
        assert [f.result(timeout=5)[0][0]["input"] for f in good] == [
            "/good0.png", "/good1.png", "/good2.png"
        ]  # fmt: skip
    finally:
        batcher.close()


def test_window_zero_is_one_call_per_request_and_max_batch_holds():
    recorder = Recorder(delay=0.05)
    batcher = _batcher(recorder, workers=1, window_s=0)
    try:
        for future in [batcher.submit([Path(f"/{n}.png")], {}) for n in range(5)]:
            future.result(timeout=5)
    finally:
        batcher.close()
    assert [len(inputs) for inputs, _ in recorder.calls] == [1] * 5
    recorder = Recorder()
    batcher = _batcher(recorder, workers=1, window_s=0.2, max_batch=4)
    try:
        for future in [batcher.submit([Path(f"/{n}.png")], {}) for n in range(10)]:
            future.result(timeout=5)
    finally:
        batcher.close()
    assert [len(inputs) for inputs, _ in recorder.calls] == [4, 4, 2]


def test_queue_bound_and_cancelled_requests_are_never_predicted():
    gate = Gate()
    batcher = _batcher(lambda inputs, options: gate(inputs), workers=1, max_queue=2, window_s=0)
    try:
        running = batcher.submit([Path("/0.png")], {})
        assert gate.started.wait(5)
        waiting = [batcher.submit([Path(f"/{n}.png")], {}) for n in (1, 2)]
        assert batcher.depth == 2
        with pytest.raises(QueueFull):
            batcher.submit([Path("/3.png")], {})
        assert waiting[0].cancel()
        assert batcher.depth == 1
        batcher.submit([Path("/4.png")], {})  # the cancelled request's place is free again
        gate.release.set()
        assert running.result(timeout=5)[0] == [{"input": "/0.png", "label": "ok"}]
        assert waiting[1].result(timeout=5)[0] == [{"input": "/2.png", "label": "ok"}]
    finally:
        batcher.close()
    assert [str(p) for inputs in gate.calls for p in inputs] == ["/0.png", "/2.png", "/4.png"]


def test_results_for_inputs_never_given_fail_the_call():
    batcher = _batcher(lambda inputs, options: [{"input": "/elsewhere.png"}], window_s=0.2)
    try:
        futures = [batcher.submit([Path(f"/{n}.png")], {}) for n in range(2)]
        for future in futures:
            with pytest.raises(RuntimeError, match="not given"):
                future.result(timeout=5)
    finally:
        batcher.close()


def _encoded(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def test_sniff_real_files(sample_media, tmp_path):
    from lrcn.data.video_io import write_video

    image = Image.new("RGB", (16, 16), "green")
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif"), ("BMP", ".bmp"),
                        ("WEBP", ".webp")):  # fmt: skip
        media = sniff(_encoded(image, fmt)[:512])
        assert media is not None and (media.kind, media.suffix) == ("image", suffix), fmt
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    for suffix in (".mp4", ".mkv", ".avi"):
        write_video(tmp_path / f"v{suffix}", frames)
        media = sniff((tmp_path / f"v{suffix}").read_bytes()[:512])
        assert media is not None and (media.kind, media.suffix) == ("video", suffix), suffix
    assert sniff(sample_media["video"].read_bytes()[:512]).kind == "video"
    assert sniff(sample_media["jpeg"].read_bytes()[:512]).suffix == ".jpg"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00", ("video", ".mov")),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", ("video", ".mp4")),
        (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01webm", ("video", ".mkv")),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89", ("video", ".mpg")),
        (b"\x47" + bytes(187) + b"\x47" + bytes(50), ("video", ".ts")),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None),  # a HEIF photo: not readable here
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"<html><body>hi</body></html>", None),
        (b"%PDF-1.7\n", None),
        (b"", None),
    ],
)
def test_sniff_signatures(head, expected):
    media = sniff(head)
    assert (media and (media.kind, media.suffix)) == expected


async def _chunks(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _multipart(files, data) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_read_form_streams_files_under_generated_names(tmp_path):
    png = _encoded(Image.new("RGB", (8, 8)), "PNG")
    jpeg = _encoded(Image.new("RGB", (8, 8)), "JPEG")
    files = [("file", ("../../etc/passwd.png", png)), ("file", ("C:\\pics\\cat.gif", jpeg))]
    body, content_type = _multipart(files, {"beam": "3", "question": "what colour?"})
    form = asyncio.run(read_form(_chunks(body, 7), content_type, tmp_path, limit=len(body)))
    assert [u.name for u in form.files] == ["passwd.png", "cat.gif"]
    assert [u.path.name for u in form.files] == ["input-0.png", "input-1.jpg"]  # sniffed suffix
    assert [u.path.read_bytes() for u in form.files] == [png, jpeg]
    assert form.fields == {"beam": "3", "question": "what colour?"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input-0.png", "input-1.jpg"]


@pytest.mark.parametrize(
    ("files", "data", "limit", "status", "reason"),
    [
        ([("file", ("a.png", b"x" * 100))], {}, 50, 413, "too_large"),
        ([("file", ("a.png", b"plain text"))], {}, 10**6, 415, "unsupported_type"),
        ([("photo", ("a.png", b"\x89PNG\r\n\x1a\n"))], {}, 10**6, 422, "bad_form"),
        ([("file", ("a.png", b"\x89PNG\r\n\x1a\n"))], {"file": "text"}, 10**6, 422, "bad_form"),
        ([("file", ("a.png", b"\x89PNG\r\n\x1a\n"))], {"x": "y" * 70_000}, 10**6, 413, "too_large"),
    ],
)
def test_read_form_refusals(tmp_path, files, data, limit, status, reason):
    body, content_type = _multipart(files, data)
    with pytest.raises(UploadError) as err:
        asyncio.run(
            read_form(_chunks(body, 4096), content_type, tmp_path, limit=limit, expect="image")
        )
    assert (err.value.status, err.value.reason) == (status, reason)


def test_read_form_refuses_a_truncated_body(tmp_path):
    body, content_type = _multipart([("file", ("a.png", _png()))], {})
    with pytest.raises(UploadError, match="ended before"):
        asyncio.run(read_form(_chunks(body[:-10], 64), content_type, tmp_path, limit=10**6))


def test_models_are_named_after_their_runs_also_when_exported(tmp_path):
    from lrcn.serve.app import model_names

    runs = [
        tmp_path / "lrcn" / "best-onnx",
        tmp_path / "vqa" / "last",
        tmp_path / "lrcn",
        tmp_path / "s2vt",
    ]
    assert model_names(runs) == ["lrcn", "vqa", "lrcn-2", "s2vt"]
