"""The thin bridge between Blender and the runtime: one Runtime per Blender session, its pump timer, and the
preferences copied into backend settings.

This module touches bpy, always on Blender's main thread. Nothing here starts at add-on registration: the runtime,
its thread and the client modules come to life on the first job or connection test, so enabling the add-on costs
Blender's start-up almost nothing. Features hook in with :func:`add_start_hook` (the placer registry, Direct's
layout): this bridge knows none of them. The runtime's own thread model is described in ``runtime/core.py``.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

if TYPE_CHECKING:
    from .runtime.core import Runtime

log = logging.getLogger(__name__)

PACKAGE = __package__ or "movie_director"
#: Pump interval while jobs run: progress reaches the sidebar within about half of it.
ACTIVE_INTERVAL = 0.02
#: Pump interval with nothing running; after IDLE_TICKS such ticks the timer removes itself.
IDLE_INTERVAL = 0.5
IDLE_TICKS = 20
#: How long a job whose server is unreachable waits ("waiting for server") before it fails.
OFFLINE_WAIT = 6 * 3600.0

_runtime: Runtime | None = None
_idle_ticks = 0
_unsubscribe: list[Any] = []
#: The handle of the job an operator started last (operators cannot return objects to scripts).
last_handle: Any = None
#: The batch an operator started last (Generate Variations).
last_batch: Any = None
#: ``fn(runtime)`` run once each time the session's runtime starts; may return an undo function run at shutdown.
StartHook = Callable[["Runtime"], Any]
_start_hooks: list[StartHook] = []


def add_start_hook(fn: StartHook) -> None:
    """Run ``fn(runtime)`` when the runtime starts (at once if it already has): how features attach to it."""
    if fn not in _start_hooks:
        _start_hooks.append(fn)
        if _runtime is not None:
            _run_hook(fn, _runtime)


def remove_start_hook(fn: StartHook) -> None:
    if fn in _start_hooks:
        _start_hooks.remove(fn)


def _run_hook(fn: StartHook, rt: Runtime) -> None:
    try:
        undo = fn(rt)
    except Exception:  # one broken feature must not keep the runtime from starting
        log.exception("a Movie Director start hook failed")
        return
    if callable(undo):
        _unsubscribe.append(undo)


def preferences() -> Any | None:
    """The add-on's preferences, or None when it is not enabled through Blender's add-on system."""
    addon = bpy.context.preferences.addons.get(PACKAGE)
    return addon.preferences if addon else None


def output_root() -> Path:
    prefs = preferences()
    folder = getattr(prefs, "output_dir", "") if prefs else ""
    if folder:
        return Path(bpy.path.abspath(folder))
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, path="outputs", create=True))
    except (ValueError, AttributeError):  # not loaded as an extension (e.g. a development checkout)
        return Path(tempfile.gettempdir()) / "movie_director_outputs"


def state_dir() -> Path:
    """Where the job journal and the caches live (the extension's user folder; a temp folder in a checkout)."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, path="state", create=True))
    except (ValueError, AttributeError):
        path = Path(tempfile.gettempdir()) / "movie_director_state"
        path.mkdir(parents=True, exist_ok=True)
        return path


def installation_id() -> str:
    """A stable id for this installation: ComfyUI routes a prompt's events to the client id that sent it, so a
    prompt sent before Blender restarted still reports to us."""
    path = state_dir() / "client_id"
    try:
        value = path.read_text().strip()
        if value:
            return value
    except OSError:
        pass
    import uuid  # once per installation: not when the add-on is enabled

    value = uuid.uuid4().hex
    try:
        path.write_text(value)
    except OSError:
        log.warning("could not save the client id to %s", path)
    return value


def backend_configs() -> list[Any]:
    """Backend settings from the preferences (defaults where the add-on has no preferences, e.g. in tests)."""
    from .clients import registry
    from .runtime.backend import BackendConfig
    from .runtime.urls import split_urls

    prefs = preferences()
    configs = []
    for info in registry.BACKENDS:
        settings = getattr(prefs, info.name, None) if prefs else None
        urls = (getattr(settings, "urls", "") or info.default_url) if settings else info.default_url
        key = (getattr(settings, "api_key", "") if settings else "") or os.environ.get(
            f"MOVIE_DIRECTOR_{info.name.upper()}_API_KEY", ""
        )
        concurrency = getattr(settings, "concurrency", info.default_concurrency) if settings else None
        fields: dict[str, Any] = {
            "name": info.name,
            "api_key": key or None,
            "concurrency": concurrency or info.default_concurrency,
        }
        if info.name == "comfyui":
            options: dict[str, Any] = {"client_id": installation_id()}
            templates = getattr(prefs, "templates_dir", "") if prefs else ""
            if templates:
                options["templates_dir"] = bpy.path.abspath(templates)
            fields["options"] = options
        try:
            configs.append(BackendConfig(urls=split_urls(urls), **fields))
        except ValueError as exc:  # a bad URL in the preferences: keep working with the default, say why
            log.warning("%s: %s; using %s", info.label, exc, info.default_url)
            configs.append(BackendConfig(urls=split_urls(info.default_url), **fields))
    return configs


def runtime() -> Runtime:
    """The session's runtime, created on first use with the current preferences."""
    global _runtime
    if _runtime is None:
        from .clients import registry
        from .runtime.backend import NetworkPolicy
        from .runtime.core import Runtime

        rt = Runtime(
            output_root=output_root(),
            network=NetworkPolicy(bool(bpy.app.online_access)),
            journal=state_dir() / "jobs.db",
            offline_wait=OFFLINE_WAIT,
            cache_dir=state_dir() / "cache",
        )
        for config in backend_configs():
            rt.register_backend(config.name, registry.factory_for(config.name), config)
        _unsubscribe.append(rt.subscribe(_on_runtime_event))
        _runtime = rt
        atexit.register(_at_exit)
        rt.start()  # brings back the jobs and pipelines of the last session from the journal
        for hook in list(_start_hooks):
            _run_hook(hook, rt)
    ensure_timer()
    return _runtime


def resume_if_needed(*_args: Any) -> None:
    """Start the runtime when the journal holds unfinished jobs (Blender just started, or a file was loaded), so
    they resume at once and the jobs panel shows them; results that belong to the open file land there. A cheap
    read-only look at the journal first: with nothing to resume nothing starts."""
    if _runtime is not None:
        return
    from .runtime.journal import has_unfinished

    try:
        if has_unfinished(state_dir() / "jobs.db"):
            runtime()
    except Exception:  # a start-up convenience must never break loading a file
        log.exception("resuming Movie Director's unfinished jobs failed")


@bpy.app.handlers.persistent  # type: ignore[misc]
def _resume_on_load(*_args: Any) -> None:
    resume_if_needed()


def _resume_deferred() -> None:
    """Registered as a one-shot timer by :func:`watch_for_unfinished`: after Blender has started, not inside it."""
    resume_if_needed()


def watch_for_unfinished() -> None:
    """Called from ``register()``: resume after start-up (a deferred timer, never work inside ``register()``) and
    after every file load (a persistent ``load_post`` handler)."""
    if _resume_on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_resume_on_load)
    if not bpy.app.timers.is_registered(_resume_deferred):
        bpy.app.timers.register(_resume_deferred, first_interval=1.0)


def stop_watching() -> None:
    if _resume_on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_resume_on_load)
    if bpy.app.timers.is_registered(_resume_deferred):
        bpy.app.timers.unregister(_resume_deferred)


def current() -> Runtime | None:
    """The runtime if it has been started, without starting it (for draw code)."""
    return _runtime


def apply_preferences() -> None:
    """Copy edited preferences into the live runtime (called from property update callbacks: no network here)."""
    if _runtime is None:
        return
    _runtime.network.online_access = bool(bpy.app.online_access)
    _runtime.output_root = output_root()
    for config in backend_configs():
        _runtime.configure(config)  # registers the key as a secret


def _on_runtime_event(event: Any) -> None:
    tag_redraw()


def tag_redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()


def pump_timer() -> float | None:
    """The ``bpy.app.timers`` function: drain the outbox, then say when to run next (None removes the timer)."""
    global _idle_ticks
    rt = _runtime
    if rt is None:
        return None
    if rt.pump():
        tag_redraw()
    if rt.has_live_jobs():
        _idle_ticks = 0
        return ACTIVE_INTERVAL
    _idle_ticks += 1
    if _idle_ticks > IDLE_TICKS:
        return None
    return IDLE_INTERVAL


def ensure_timer() -> None:
    global _idle_ticks
    _idle_ticks = 0
    if not bpy.app.timers.is_registered(pump_timer):
        bpy.app.timers.register(pump_timer, first_interval=0.0, persistent=True)


def _at_exit() -> None:
    """Blender is quitting: stop the loop but keep unfinished jobs in the journal, to resume next time."""
    rt = _runtime
    if rt is not None:
        rt.stop(timeout=1.0)


def shutdown() -> None:
    """Cancel every job (asking servers to stop), stop the loop thread, remove the timer. Called by unregister."""
    global _runtime
    if bpy.app.timers.is_registered(pump_timer):
        bpy.app.timers.unregister(pump_timer)
    rt, _runtime = _runtime, None
    atexit.unregister(_at_exit)
    for unsubscribe in _unsubscribe:
        unsubscribe()
    _unsubscribe.clear()
    if rt is not None:
        rt.stop(timeout=1.0, cancel_remote=True)
        rt.pump()
