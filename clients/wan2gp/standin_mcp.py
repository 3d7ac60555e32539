"""A stand-in for Wan2GP's MCP server: the same tools, job snapshots, events, one-job rule and gallery transfers,
making real (short, deterministic) MJPEG AVI videos without a GPU.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md``. Built with the ``mcp`` package's
``FastMCP`` in stateless JSON mode, as Wan2GP is; by default it answers at ``/mcp/``, so ``/mcp`` gets the same 307
redirect that Wan2GP's SDK version gives. ``flavour`` imitates other server versions: ``"media_id"`` (media ids
instead of gallery ids) or ``"session"`` (one ``wangp_session(action=...)`` tool). The engine is
:mod:`.standin_mcp_engine`.

    python -m movie_director.clients.wan2gp.standin_mcp --port 7866 --step-delay 0.05

prints the MCP URL on one line once it answers. ``--die-at-step N`` ends the process abruptly at inference step N
(the "server dies mid-job" case). In tests, ``StandinServer(step_delay=...).start()`` runs it in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from ..scratch import exit_on_sigterm
from .standin_mcp_engine import FakeWanGP, StandinOptions, ToolFailure

__all__ = ["FakeWanGP", "StandinOptions", "StandinServer", "build_app", "main"]

Action = Literal["list_models", "generate", "get_job", "cancel_job", "create_gallery_upload", "create_gallery_download"]


def build_app(engine: FakeWanGP, host: str = "127.0.0.1", port: int = 7866) -> Any:
    """The Starlette app: the MCP endpoint plus the gallery transfer routes at the server root."""
    from mcp.server.fastmcp import FastMCP
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response

    options = engine.options
    path = "/mcp/" if options.redirect else "/mcp"
    mcp = FastMCP("WanGP", host=host, port=port, json_response=True, stateless_http=True, streamable_http_path=path)
    if options.flavour == "session":
        _session_tool(mcp, engine)
    else:
        _tools(mcp, engine)

    @mcp.custom_route("/wangp_api/gallery/upload/{token}", methods=["PUT"])
    async def upload(request: Request) -> Response:
        filename = engine.take_upload(request.path_params["token"])
        if filename is None:
            return JSONResponse({"error": "unknown or expired upload token"}, status_code=404)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > options.max_upload_bytes:
                return JSONResponse({"error": "upload too large"}, status_code=413)
        return JSONResponse(engine.store_upload(filename, bytes(data)))

    @mcp.custom_route("/wangp_api/gallery/download/{token}", methods=["GET"])
    async def download(request: Request) -> Response:
        file = engine.take_download(request.path_params["token"])
        if file is None or not file.is_file():
            return JSONResponse({"error": "unknown or expired download token"}, status_code=404)
        return FileResponse(file, filename=file.name)

    return mcp.streamable_http_app()


def _tools(mcp: Any, engine: FakeWanGP) -> None:
    @mcp.tool()
    def wangp_list_models(
        family: str | None = None,
        model_type: str | None = None,
        main_output: str | None = None,
        query: str | None = None,
        limit: int = 10,
        offset: int = 0,
        include_availability: bool = False,
    ) -> list[dict[str, Any]]:
        """List compact model metadata records (at most 10 per call)."""
        return engine.list_models(query or model_type or family, limit, offset)

    @mcp.tool()
    def wangp_get_default_settings(model_type: str) -> dict[str, Any]:
        """Return generated default settings for a model."""
        return engine.default_settings(model_type)

    @mcp.tool()
    def wangp_get_model_schema(model_type: str) -> dict[str, Any] | None:
        """Return a compact capability and usage summary for one model."""
        return engine.model_schema(model_type)

    @mcp.tool()
    def wangp_list_loras(model_type: str) -> dict[str, Any]:
        """List every locally available LoRA for a model."""
        return engine.list_loras(model_type)

    @mcp.tool()
    def wangp_get_model_availability(model_type: str) -> dict[str, Any]:
        """Return local file availability for one model."""
        return engine.availability(model_type)

    @mcp.tool()
    def wangp_generate(
        source: dict[str, Any] | list[dict[str, Any]], wait: bool = False, timeout_s: float | None = None,
        event_limit: int = 20,
    ) -> dict[str, Any]:  # fmt: skip
        """Start a WanGP generation from a settings dict, task dict, or task list."""
        return engine.generate(source, wait, event_limit)

    @mcp.tool()
    def wangp_get_job(job_id: str, event_limit: int = 20) -> dict[str, Any]:
        """Poll a WanGP generation job."""
        return engine.get_job(job_id, event_limit)

    @mcp.tool()
    def wangp_cancel_job(job_id: str) -> dict[str, Any]:
        """Request cancellation of a WanGP generation job."""
        return engine.cancel_job(job_id)

    @mcp.tool()
    def wangp_create_gallery_upload(filename: str) -> dict[str, Any]:
        """Create a short-lived HTTP PUT URL for uploading image, video, or audio media."""
        return engine.create_upload(filename)

    if engine.options.flavour == "media_id":

        @mcp.tool()
        def wangp_create_gallery_download(media_id: str) -> dict[str, Any]:
            """Create a short-lived HTTP GET URL for downloading one media item."""
            return engine.create_download(media_id)

    else:

        @mcp.tool()
        def wangp_create_gallery_download(gallery_id: str) -> dict[str, Any]:  # type: ignore[no-redef]
            """Create a short-lived HTTP GET URL for downloading one gallery item."""
            return engine.create_download(gallery_id)


def _session_tool(mcp: Any, engine: FakeWanGP) -> None:
    @mcp.tool()
    def wangp_session(
        action: Action,
        source: dict[str, Any] | list[dict[str, Any]] | None = None,
        job_id: str | None = None,
        filename: str | None = None,
        gallery_id: str | None = None,
        wait: bool = False,
        event_limit: int = 20,
        query: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> Any:
        """One entry point for every WanGP session action."""
        if action == "list_models":
            return engine.list_models(query, limit, offset)
        if action == "generate":
            return engine.generate(source, wait, event_limit)
        if action in ("get_job", "cancel_job") and not job_id:
            raise ToolFailure(f"{action} needs job_id")
        if action == "get_job":
            return engine.get_job(str(job_id), event_limit)
        if action == "cancel_job":
            return engine.cancel_job(str(job_id))
        if action == "create_gallery_upload":
            return engine.create_upload(str(filename))
        return engine.create_download(str(gallery_id))


class StandinServer:
    """The stand-in on 127.0.0.1 in a thread of its own (own event loop), for tests and scripts."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, allow_exit: bool = False, **options: Any) -> None:
        known = {f.name for f in fields(StandinOptions)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown stand-in options: {', '.join(sorted(unknown))}")
        self.options = StandinOptions(**options)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if self.options.output_dir:
            folder = Path(self.options.output_dir)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="wan2gp-standin-")
            folder = Path(self._tmp.name)
        folder.mkdir(parents=True, exist_ok=True)
        self.engine = FakeWanGP(self.options, folder, allow_exit=allow_exit)
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> StandinServer:
        self._thread = threading.Thread(target=self._run, name=f"wan2gp-standin-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the Wan2GP stand-in did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or the process ends); sets the ready flag once requests are answered."""
        import uvicorn

        self._loop = asyncio.get_running_loop()
        self._loop.set_default_executor(ThreadPoolExecutor(2, thread_name_prefix="wan2gp-standin-io"))
        app = build_app(self.engine, self.host, self.port)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._sock.listen(128)
        serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        try:
            async with asyncio.timeout(10):
                while not self._server.started and not serving.done():
                    await asyncio.sleep(0.01)  # uvicorn offers no start-up event; bounded by the timeout
            self._ready.set()
            await serving
        finally:
            for job in list(self.engine.jobs.values()):
                if job.task is not None and not job.task.done():
                    job.task.cancel()
            self._sock.close()

    def call(self, fn: Any, timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the stand-in's loop (its state lives there) and return the result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in for Wan2GP's MCP server (no GPU; real AVI videos).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7866, help="0 picks a free port")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per inference step")
    parser.add_argument("--flavour", choices=["gallery", "media_id", "session"], default="gallery")
    parser.add_argument("--die-at-step", type=int, default=None, help="exit abruptly at this inference step")
    parser.add_argument("--no-redirect", action="store_true", help="answer at /mcp without the 307 to /mcp/")
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args(argv)
    exit_on_sigterm()  # stopped with terminate(): `finally` below removes its output folder
    server = StandinServer(
        host=args.host,
        port=args.port,
        allow_exit=True,
        step_delay=args.step_delay,
        flavour=args.flavour,
        die_at_step=args.die_at_step,
        redirect=not args.no_redirect,
        output_dir=args.output_dir,
    )

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        ready = await asyncio.to_thread(server._ready.wait, 15)
        if ready and not serving.done():
            print(server.url, flush=True)
        await serving

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
