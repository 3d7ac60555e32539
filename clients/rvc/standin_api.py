"""A stand-in for rvc-python's API server (``python -m rvc_python api``), faithful on the wire: the same routes,
JSON shapes, FastAPI error bodies (``{"detail": ...}``, 422 validation lists, 404 "Not Found") and server-wide state
(one loaded model, one set of settings). Conversion is a real transform (:mod:`.standin_dsp`).

Plain Python: this module never imports bpy (it needs numpy). Run it by hand:
``python -m movie_director.clients.rvc.standin_api --port 5050 [--models-dir DIR | --voices alice,bob]``.

Voices come from a models folder (sub-folders holding a ``.pth`` and optionally an ``.index``, as rvc-python scans
them) or from a fixed list. Knobs for tests: ``convert_delay`` (seconds a conversion takes), ``die_mid_conversion``
(the next conversion sends half its answer, then the server drops every connection, as a crashed process would),
``forget_model()`` (as after a restart: "No model loaded"). Records: ``calls``, ``loads``, ``conversions``,
``max_active``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import io
import json
import re
import sys
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from ..serving import AppThread
from . import standin_dsp

DEFAULT_PARAMS: dict[str, Any] = {
    "f0method": "harvest",
    "f0up_key": 0,
    "index_rate": 0.5,
    "filter_radius": 3,
    "resample_sr": 0,
    "rms_mix_rate": 1,
    "protect": 0.33,
}
_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(:\d+)?$")
MAX_UPLOAD = 512 * 1024 * 1024


def _detail(status: int, detail: Any) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _missing(field: str, given: Any = None) -> web.Response:
    """FastAPI's 422 for a missing body field."""
    return _detail(422, [{"type": "missing", "loc": ["body", field], "msg": "Field required", "input": given}])


class RvcApiStandin:
    def __init__(
        self,
        voices: Iterable[str] | None = None,
        *,
        models_dir: str | Path | None = None,
        convert_delay: float = 0.0,
        voice_rate: int = standin_dsp.VOICE_RATE,
    ) -> None:
        self.models_dir = Path(models_dir) if models_dir else None
        self._fixed = list(voices) if voices is not None else None
        self.models: dict[str, dict[str, str | None]] = self._scan()
        self.current_model: str | None = None
        self.params = dict(DEFAULT_PARAMS)
        self.device = "cpu:0"
        self.voice_rate = voice_rate
        self.convert_delay = convert_delay
        self.die_mid_conversion = False
        self.dead = False
        self.calls: list[tuple[str, str]] = []
        self.loads: list[str] = []
        self.conversions: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._thread: AppThread | None = None
        self._stopping = asyncio.Event()  # replaced on the server's loop when the app is built

    # --- state ------------------------------------------------------------------------------------------------------
    def _scan(self) -> dict[str, dict[str, str | None]]:
        if self._fixed is not None:
            return {name: {"pth": f"{name}/{name}.pth", "index": None} for name in self._fixed}
        models: dict[str, dict[str, str | None]] = {}
        if self.models_dir and self.models_dir.is_dir():
            for folder in sorted(p for p in self.models_dir.iterdir() if p.is_dir()):
                pth = sorted(folder.glob("*.pth"))
                index = sorted(folder.glob("*.index"))
                if pth:
                    models[folder.name] = {"pth": str(pth[0]), "index": str(index[0]) if index else None}
        return models

    def forget_model(self) -> None:
        """As if the server restarted: nothing loaded, settings back to their defaults."""
        self.current_model = None
        self.params = dict(DEFAULT_PARAMS)

    # --- the app ----------------------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_UPLOAD)
        r = app.router
        r.add_post("/convert", self.convert)
        r.add_post("/convert_file", self.convert_file)
        r.add_get("/models", self.list_models)
        r.add_post("/models/{name}", self.load_model)
        r.add_get("/params", self.get_params)
        r.add_post("/params", self.set_params)
        r.add_post("/upload_model", self.upload_model)
        r.add_post("/set_device", self.set_device)
        r.add_post("/set_models_dir", self.set_models_dir)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.dead:  # a crashed server: the connection drops without an answer
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        self.calls.append((request.method, request.path))
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            return _detail(405, "Method Not Allowed")
        except web.HTTPNotFound:
            return _detail(404, "Not Found")

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    async def list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"models": list(self.models)})

    async def load_model(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.models:
            return _detail(400, f"Model {name} not found.")
        self.current_model = name
        self.loads.append(name)
        return web.json_response({"message": f"Model {name} loaded successfully"})

    async def get_params(self, request: web.Request) -> web.Response:
        return web.json_response(self.params)

    async def set_params(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body, dict) or "params" not in body:
            return _missing("params", body)
        if not isinstance(body["params"], dict):
            return _detail(
                422,
                [{"type": "dict_type", "loc": ["body", "params"], "msg": "Input should be a valid dictionary"}],
            )
        for key, value in body["params"].items():
            if key in DEFAULT_PARAMS:  # rvc-python ignores (and prints a warning for) unknown keys
                self.params[key] = value
        return web.json_response({"message": "Parameters updated successfully"})

    async def set_device(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body, dict) or not isinstance(body.get("device"), str):
            return _missing("device", body)
        if not _DEVICE.match(body["device"]):
            return _detail(400, f"Invalid device string: {body['device']}")
        self.device = body["device"]
        return web.json_response({"message": f"Device set to {self.device}"})

    async def set_models_dir(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body, dict) or not isinstance(body.get("models_dir"), str):
            return _missing("models_dir", body)
        folder = Path(body["models_dir"])
        if not folder.is_dir():
            return _detail(400, f"Directory {folder} does not exist")
        self.models_dir, self._fixed = folder, None
        self.models = self._scan()
        return web.json_response({"message": f"Models directory set to {folder}"})

    async def upload_model(self, request: web.Request) -> web.Response:
        data = await self._form_file(request)
        if data is None:
            return _missing("file")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = zf.namelist()
                if self.models_dir is None:
                    for top in {n.split("/")[0] for n in names if n.endswith(".pth") and "/" in n}:
                        self.models[top] = {"pth": f"{top}/{top}.pth", "index": None}
                else:
                    root = self.models_dir.resolve()
                    for info in zf.infolist():
                        target = (root / info.filename).resolve()
                        if not target.is_relative_to(root):
                            raise ValueError(f"refusing to extract {info.filename}")
                    zf.extractall(root)
                    self.models = self._scan()
        except (zipfile.BadZipFile, ValueError) as exc:
            return _detail(500, str(exc))
        return web.json_response({"message": "Models uploaded and extracted successfully"})

    async def _form_file(self, request: web.Request) -> bytes | None:
        if not request.content_type.startswith("multipart/"):
            return None
        reader = await request.multipart()
        async for part in reader:
            if getattr(part, "name", None) == "file":
                return bytes(await part.read())  # type: ignore[union-attr]
        return None

    async def convert(self, request: web.Request) -> web.StreamResponse:
        """POST /convert ``{"audio_data": "<base64 WAV>"}``."""
        if not self.current_model:
            return _detail(400, "No model loaded. Please load a model first.")
        body = await self._json(request)
        if not isinstance(body, dict) or not isinstance(body.get("audio_data"), str):
            return _missing("audio_data", body)
        try:
            data = base64.b64decode(body["audio_data"], validate=True)
        except (binascii.Error, ValueError):
            return _detail(400, "Invalid audio data")
        return await self._run(request, data)

    async def convert_file(self, request: web.Request) -> web.StreamResponse:
        """POST /convert_file, multipart ``file``."""
        if not self.current_model:
            return _detail(400, "No model loaded. Please load a model first.")
        data = await self._form_file(request)
        if data is None:
            return _missing("file")
        return await self._run(request, data)

    async def _run(self, request: web.Request, data: bytes) -> web.StreamResponse:
        model, params = self.current_model, dict(self.params)
        assert model is not None
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.convert_delay:
                try:  # a conversion "takes" convert_delay seconds, unless the server is being stopped
                    await asyncio.wait_for(self._stopping.wait(), self.convert_delay)
                except TimeoutError:
                    pass
            try:
                out = await asyncio.to_thread(
                    standin_dsp.convert,
                    data,
                    model,
                    pitch=float(params["f0up_key"]),
                    index_rate=float(params["index_rate"]),
                    rms_mix_rate=float(params["rms_mix_rate"]),
                    out_rate=int(params["resample_sr"]) or self.voice_rate,
                )
            except (ValueError, TypeError) as exc:
                return _detail(500, f"An error occurred: {exc}")
            self.conversions.append(
                {"model": model, "model_after": self.current_model, "params": params, "bytes_in": len(data)}
            )
        finally:
            self.active -= 1
        if self.die_mid_conversion:
            return await self._die(request, out)
        return web.Response(body=out, content_type="audio/wav")

    async def _die(self, request: web.Request, out: bytes) -> web.StreamResponse:
        self.die_mid_conversion = False
        self.dead = True
        resp = web.StreamResponse(headers={"Content-Type": "audio/wav", "Content-Length": str(len(out))})
        await resp.prepare(request)
        await resp.write(out[: len(out) // 2])
        if request.transport is not None:
            request.transport.abort()
        return resp

    # --- hosting ----------------------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> RvcApiStandin:
        self._thread = AppThread(self.app, port=port, name="rvc-api-standin").start()
        return self

    @property
    def url(self) -> str:
        assert self._thread is not None, "start() it first"
        return self._thread.url

    def stop(self) -> None:
        if self._thread is not None:
            try:
                if self._thread.loop is not None:
                    self._thread.loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # its loop already ended
                pass
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> RvcApiStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in for rvc-python's API server")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--models-dir", default="", help="folder of voice folders (each with a .pth)")
    parser.add_argument("--voices", default="alice,bob", help="fixed voice names when there is no --models-dir")
    args = parser.parse_args(argv)
    voices = None if args.models_dir else [v.strip() for v in args.voices.split(",") if v.strip()]
    standin = RvcApiStandin(voices, models_dir=args.models_dir or None).start(args.port)
    print(standin.url, flush=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
