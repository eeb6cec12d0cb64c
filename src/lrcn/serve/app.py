"""``lrcn serve``: a versioned JSON API over trained runs, with the limits a network service needs.

Routes (see :func:`create_app`)::

    GET  /healthz                      {"status": "ok", "models": N}; never needs the token
    GET  /v1/models                    {"models": [{"name": ..., **Predictor.describe()}]}
    POST /v1/models/{name}/predict     multipart: files in "file", the task's options as fields
    GET  /metrics                      Prometheus text format (the app's own registry)
    GET  /  and  /static/*             the web page (static/), never needs the token

Every error is JSON ``{"detail": "<one line>"}``: 401 no or wrong token, 404 unknown model,
413 upload too large, 415 not an image/video of the kind the model reads, 422 a bad form or
option (or predict's own option errors), 503 the model's queue is full (with Retry-After),
504 no prediction within the timeout, 500 a bug (logged with its traceback).

A request's files live in a private folder inside one server temp folder, removed when the
request ends; a request that timed out keeps its folder until its prediction, which may still
be running in a worker thread, finishes. Prediction runs in each model's worker threads
(:mod:`lrcn.serve.batching`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import logging
import math
import mimetypes
import re
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from lrcn.errors import LrcnError
from lrcn.serve.batching import Batcher, QueueFull, Timing
from lrcn.serve.metrics import ServeMetrics
from lrcn.serve.uploads import FILE_FIELD, Upload, UploadError, check_declared_size, read_form

__all__ = [
    "STATIC_DIR",
    "PredictorLike",
    "ServeError",
    "ServeSettings",
    "check_bind",
    "create_app",
    "load_models",
    "model_names",
    "serve",
]

STATIC_DIR = Path(__file__).parent / "static"
_LOOPBACK_NAMES = {"localhost"}
logger = logging.getLogger("lrcn.serve")


class ServeError(LrcnError):
    """A server that cannot start as asked (a public address without a token, bad limits)."""


class PredictorLike(Protocol):
    """What the server needs of a model: :class:`lrcn.tasks.inference.Predictor`'s call and
    ``describe()`` (tests pass in-memory stand-ins)."""

    def __call__(
        self, inputs: Sequence[Path], options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits; the defaults are ``lrcn serve``'s."""

    token: str | None = None
    max_upload_bytes: int = 64 * 2**20
    queue: int = 32
    timeout_s: float = 60.0
    batch_window_s: float = 0.005
    max_batch: int = 16
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "queue", "max_batch", "workers"):
            if getattr(self, name) < 1:
                raise ServeError(f"--{name.replace('_', '-')}", "must be at least 1")
        if not self.timeout_s > 0:
            raise ServeError("--timeout", "must be more than 0 seconds")
        if self.batch_window_s < 0:
            raise ServeError("--batch-window-ms", "must be 0 (off) or more")


# --------------------------------------------------------------------------------------------
# Starting: names, the bind check, loading
# --------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address without a token: the API would be open to
    the whole network."""
    if not token and not is_loopback(host):
        raise ServeError(
            f"--host {host}",
            "is reachable from other machines, and there is no token",
            expected="--token TOKEN (or LRCN_TOKEN in the environment), or a loopback "
            "host (127.0.0.1, ::1, localhost)",
        )


def model_names(paths: Sequence[Path]) -> list[str]:
    """A name per run: the run folder's name (a bundle folder named best/last, or an export
    of one such as best-onnx: its run's name); repeated names get -2, -3, ..."""
    names: list[str] = []
    for path in paths:
        resolved = Path(path).resolve()
        bundle = re.fullmatch(r"(best|last)(-onnx|-torchscript)?", resolved.name)
        base = resolved.parent.name if bundle else resolved.name
        name, n = base or "model", 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def load_models(
    runs: Sequence[Path], which: str = "best", engine: str = "eager"
) -> dict[str, PredictorLike]:
    """Load every run (a run, bundle or exported bundle folder) once, by model name."""
    from lrcn.tasks.inference import load_predictor

    return {
        name: load_predictor(run, which=which, engine=engine)
        for name, run in zip(model_names(runs), runs, strict=True)
    }


def serve(
    runs: Sequence[Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    engine: str = "eager",
    which: str = "best",
    settings: ServeSettings | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Load the runs and serve them with uvicorn until interrupted. The token and the port
    are checked first, so a mistake costs no model loading."""
    import uvicorn

    settings = settings or ServeSettings()
    check_bind(host, settings.token)
    sock = _listen(host, port)
    try:
        models = load_models(runs, which, engine)
        app = create_app(models, settings)
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        listed = ", ".join(f"{name} ({m.describe()['task']})" for name, m in models.items())
        guard = "; token required" if settings.token else ""
        log(f"lrcn serve: http://{shown}:{port} serving {listed}{guard}")
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it), or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ServeError(f"--host {host}", f"not an address to listen on ({err})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ServeError(
            f"--port {port}", f"cannot listen on {host}:{port} ({err.strerror or err})"
        ) from None
    return sock


# --------------------------------------------------------------------------------------------
# Form fields to options, results to JSON
# --------------------------------------------------------------------------------------------

_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no"}


def _parse_value(spec: dict[str, Any], text: str) -> Any:
    """A form field's text as its option's type, or a 422 naming the field."""
    name, kind = spec["name"], spec["type"]
    value: Any
    try:
        if kind == "bool":
            if text.strip().lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.strip().lower() in _TRUE
        if kind == "int":
            value = int(text)
        elif kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        else:
            return text
    except ValueError:
        raise HTTPException(
            422, f"form field {name!r}: {text[:40]!r} is not a valid {kind}"
        ) from None
    if spec.get("min") is not None and value < spec["min"]:
        raise HTTPException(422, f"form field {name!r}: {value} is less than {spec['min']}")
    return value


def parse_options(
    fields: Mapping[str, str], declared: Mapping[str, dict[str, Any]], folder: Path
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Predict's options from the form's text fields, typed as ``describe()`` declares them.
    An output option (a file predict writes) is a boolean: when true, it becomes a fresh path
    in the request's ``folder``. Returns the options and those output paths by option."""
    options: dict[str, Any] = {}
    outputs: dict[str, Path] = {}
    for key, text in fields.items():
        spec = declared.get(key)
        if spec is None:
            takes = ", ".join(declared) or "no options"
            raise HTTPException(
                422, f"unknown form field {key!r}; this model takes {FILE_FIELD!r} and {takes}"
            )
        value = _parse_value(spec, text)
        if spec["output"] is None:
            options[key] = value
        elif value:
            if spec["output"] == "dir":
                path = folder / f"output-{key}"
                path.mkdir()
            else:
                path = folder / f"output-{key}{spec['output']}"
            options[key] = outputs[key] = path
    return options, outputs


def _data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


class _Scrubber:
    """Rewrites what predict returns so no server path leaves the server: an uploaded file's
    path becomes the client's file name, a file predict wrote into the request's folder a data
    URL, and any other mention of the upload folder is cut out."""

    def __init__(self, uploads: Sequence[Upload], folder: Path, upload_root: Path) -> None:
        self.names = {str(u.path): u.name for u in uploads}
        self.folder = folder
        self.referenced: set[Path] = set()
        # another request's folder can appear in a shared call's error message
        self._others = re.compile(re.escape(str(upload_root)) + r"[/\\]?[^/\\\s'\"]*[/\\]?")

    def text(self, text: str) -> str:
        for saved, name in self.names.items():
            text = text.replace(saved, name)
        return self._others.sub("", text)

    def value(self, value: Any) -> Any:
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, str):
            if value in self.names:
                return self.names[value]
            path = Path(value)
            if path.is_absolute() and path.is_relative_to(self.folder) and path.is_file():
                self.referenced.add(path)
                return _data_url(path)
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON has no NaN
        return value


def _finish(
    results: list[dict[str, Any]], scrub: _Scrubber, outputs: Mapping[str, Path]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The results as the client sees them, and any file an output folder holds that no
    result names (as data URLs by ``<option>/<file name>``)."""
    shown = [scrub.value(result) for result in results]
    extra = {}
    for option, path in outputs.items():
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file not in scrub.referenced:
                    extra[f"{option}/{file.relative_to(path).as_posix()}"] = _data_url(file)
    return shown, extra


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or "error"


def _depth_of(batcher: Batcher) -> Callable[[], int]:
    return lambda: batcher.depth


def _release(folder: Path, future: Future[Any] | None) -> None:
    """Remove a request's folder now, or, while its prediction still runs (the request timed
    out), as soon as that prediction ends."""
    if future is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:  # runs at once if the future is already done or was cancelled
        future.add_done_callback(lambda _: shutil.rmtree(folder, ignore_errors=True))


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


@dataclass
class _Served:
    name: str
    predictor: PredictorLike
    description: dict[str, Any]
    options: dict[str, dict[str, Any]]  # form-settable options by name
    batcher: Batcher | None = None


def create_app(
    models: Mapping[str, PredictorLike],
    settings: ServeSettings | None = None,
    *,
    static_dir: Path | None = None,
) -> FastAPI:
    """The API over ``models`` (name → predictor). The upload folder is created when the app
    starts (``app.state.upload_dir``) and removed when it stops, with the worker threads."""
    settings = settings or ServeSettings()
    static = Path(static_dir) if static_dir is not None else STATIC_DIR
    metrics = ServeMetrics()
    served: dict[str, _Served] = {}
    for name, predictor in models.items():
        description = predictor.describe()
        settable = {
            o["name"]: o
            for o in description["options"]
            if o["type"] in ("int", "float", "str", "bool")
        }
        served[name] = _Served(name, predictor, description, settable)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upload_dir = Path(tempfile.mkdtemp(prefix="lrcn-serve-"))
        for model in served.values():
            # a task whose predict relates a request's inputs to each other (retrieval ranks
            # them) must not have other requests' inputs merged into its call
            joint = not model.description.get("independent_inputs", True)
            model.batcher = Batcher(
                model.predictor,
                workers=settings.workers,
                max_queue=settings.queue,
                window_s=0.0 if joint else settings.batch_window_s,
                max_batch=settings.max_batch,
                on_batch=metrics.batch_observer(model.name),
                name=model.name,
            )
            metrics.watch_queue(model.name, _depth_of(model.batcher))
            model.batcher.start()
        try:
            yield
        finally:
            for model in served.values():
                if model.batcher is not None:
                    await asyncio.to_thread(model.batcher.close)
            shutil.rmtree(app.state.upload_dir, ignore_errors=True)

    app = FastAPI(
        title="lrcn serve",
        lifespan=lifespan,
        docs_url=None,  # the web page is the UI; Swagger would load scripts from a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.state.metrics = metrics
    app.state.settings = settings

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": _one_line(str(err.detail))}, err.status_code, headers=err.headers
        )

    @app.exception_handler(LrcnError)
    async def user_error(request: Request, err: LrcnError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(str(err))}, 422)

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"internal error ({type(err).__name__}); see the server log"}, 500
        )

    async def authorized(request: Request) -> None:
        if settings.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), settings.token.encode()
        ):
            raise HTTPException(
                401,
                "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": len(served)}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        page = static / "index.html"
        if not page.is_file():
            raise HTTPException(404, "no web page: lrcn/serve/static/index.html is not installed")
        return FileResponse(page)

    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

    api = APIRouter(dependencies=[Depends(authorized)])

    @api.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @api.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [{"name": m.name, **m.description} for m in served.values()]}

    @api.post("/v1/models/{name}/predict")
    async def predict(name: str, request: Request) -> JSONResponse:
        started = time.monotonic()
        model = served.get(name)
        code = 500
        try:
            if model is None:
                known = ", ".join(served) or "none"
                raise HTTPException(404, f"no model {name!r}; this server has {known}")
            response = await _predict(model, request)
            code = response.status_code
            return response
        except HTTPException as err:
            code = err.status_code
            raise
        finally:
            label = name if model is not None else "unknown"
            metrics.observe_request(label, code, time.monotonic() - started)

    async def _predict(model: _Served, request: Request) -> JSONResponse:
        upload_root: Path = request.app.state.upload_dir
        folder: Path | None = None
        future: Future[tuple[list[dict[str, Any]], Timing]] | None = None
        try:
            check_declared_size(request.headers.get("content-length"), settings.max_upload_bytes)
            folder = Path(tempfile.mkdtemp(prefix="request-", dir=upload_root))
            form = await read_form(
                request.stream(),
                request.headers.get("content-type"),
                folder,
                limit=settings.max_upload_bytes,
                expect=model.description["input"],
            )
            if not form.files:
                raise HTTPException(
                    422, f"no file: send one or more files in the form field {FILE_FIELD!r}"
                )
            options, outputs = parse_options(form.fields, model.options, folder)
            scrub = _Scrubber(form.files, folder, upload_root)
            assert model.batcher is not None
            try:
                future = model.batcher.submit([u.path for u in form.files], options)
            except QueueFull:
                raise HTTPException(
                    503,
                    f"model {model.name!r} is busy ({settings.queue} requests waiting); "
                    "try again later",
                    headers={"Retry-After": str(model.batcher.retry_after())},
                ) from None
            try:
                results, timing = await asyncio.wait_for(
                    asyncio.wrap_future(future), settings.timeout_s
                )
            except asyncio.TimeoutError:
                future.cancel()  # dropped if still queued; a running call ends on its own
                raise HTTPException(
                    504, f"no prediction within {settings.timeout_s:g} s; try again later"
                ) from None
            except LrcnError as err:  # predict's own checks of the options
                raise HTTPException(422, scrub.text(str(err))) from None
            except Exception as err:
                logger.error("predict failed on %s", model.name, exc_info=err)
                raise HTTPException(
                    500, f"internal error ({type(err).__name__}); see the server log"
                ) from None
            shown, extra = await asyncio.to_thread(_finish, results, scrub, outputs)
        except UploadError as err:
            metrics.rejected.labels(reason=err.reason).inc()
            raise HTTPException(err.status, str(err)) from None
        except ClientDisconnect:  # nobody is left to answer; counted as a bad request
            raise HTTPException(400, "the client went away during the upload") from None
        finally:
            if folder is not None:
                _release(folder, future)
        if shown and all("error" in r for r in shown):
            name, error = str(shown[0].get("input")), str(shown[0]["error"])
            raise HTTPException(422, error if name in error else f"{name}: {error}")
        body: dict[str, Any] = {
            "model": model.name,
            "task": model.description["task"],
            "results": shown,
            "timing": {
                "queue_ms": round(timing.queue_s * 1000, 1),
                "predict_ms": round(timing.predict_s * 1000, 1),
                "batch_size": timing.batch_size,
            },
        }
        if extra:
            body["files"] = extra
        return JSONResponse(body)

    app.include_router(api)
    return app
