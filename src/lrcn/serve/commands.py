"""``lrcn serve``: registered through :mod:`lrcn.commands`; the server is imported only when
the command runs, so listing the commands stays cheap."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from lrcn.commands import Help, register_command

__all__ = ["serve"]


@register_command("serve")
def serve(
    runs: Annotated[
        list[Path], Help("Run folders, bundle folders or exported bundle folders to serve.")
    ],
    host: Annotated[
        str, Help("Address to listen on; one that is not loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, Help("Port to listen on.", min=1, max=65535)] = 8000,
    engine: Annotated[
        str, Help("What runs the models: eager, onnxruntime or torchscript (exported).")
    ] = "eager",
    which: Annotated[str, Help("Checkpoint of each run: best or last.")] = "best",
    token: Annotated[
        str | None,
        Help("Bearer token every API request must carry (default: $LRCN_TOKEN)."),
    ] = None,
    max_upload_mb: Annotated[int, Help("Largest request body, in MB (413 above).", min=1)] = 64,
    queue: Annotated[
        int, Help("Requests that may wait per model (503 with Retry-After above).", min=1)
    ] = 32,
    timeout: Annotated[
        float, Help("Seconds a request may wait for its prediction (504 after).", min=0.001)
    ] = 60.0,
    batch_window_ms: Annotated[
        float, Help("How long a request waits to share a predictor call (0: off).", min=0)
    ] = 5.0,
    max_batch: Annotated[int, Help("Most files in one shared predictor call.", min=1)] = 16,
    workers: Annotated[int, Help("Prediction threads per model.", min=1)] = 2,
    log: Callable[[str], None] = print,
) -> None:
    """Serve runs as a JSON API (and a web page) until interrupted."""
    from lrcn.serve.app import ServeSettings
    from lrcn.serve.app import serve as run_server

    settings = ServeSettings(
        token=token or os.environ.get("LRCN_TOKEN") or None,
        max_upload_bytes=max_upload_mb * 2**20,
        queue=queue,
        timeout_s=timeout,
        batch_window_s=batch_window_ms / 1000,
        max_batch=max_batch,
        workers=workers,
    )
    try:
        run_server(
            runs, host=host, port=port, engine=engine, which=which, settings=settings, log=log
        )
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        log("stopped")
