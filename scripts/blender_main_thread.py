"""Main-thread figures in real Blender (the bpy wheel), run in a child process by scripts/bench_main_thread.py.

    python scripts/blender_main_thread.py register   # time addon_utils.enable() in a fresh process
    python scripts/blender_main_thread.py pump       # pump durations with 16 previewing jobs and a streaming Text

``pump``: the add-on is enabled as Blender enables an extension; 16 jobs on an in-process backend report progress with
a fresh 512x288 JPEG preview at 50 Hz each (a TAESD-sized sampler preview, as ComfyUI sends), through the sidebar's
own preview callback (``operators.generate_image.watch_previews``); a ``local`` job streams text into a Text block
through the Write operator's own ``on_text`` writer; every pump also sets the status bar text of each live job, as the
modal operators do. The timer function ``addon_runtime.pump_timer`` is driven at its active interval (timers never
fire in module mode) and timed with all of that; the same run without callbacks is the baseline. Prints one JSON
object.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bootstrap import ensure_importable

ensure_importable()

from movie_director.clients.scratch import scratch_root  # noqa: E402  (plain Python: no bpy)

if "BLENDER_USER_RESOURCES" not in os.environ:  # never a real user's Blender
    os.environ["BLENDER_USER_RESOURCES"] = str(scratch_root("md-bench-blender-"))
os.environ.setdefault("PYTHONNOUSERSITE", "1")

ROOT = Path(__file__).resolve().parent.parent
JOBS = 16
STEP_S = 0.02  # 50 Hz per job
STEPS = 100  # two seconds of sampling per job


def user_repo() -> str:
    import bpy

    return str(bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True))


def install() -> None:
    """This checkout, and two empty extensions (the peers: the least an extension can cost), in the user repository."""
    repo = user_repo()
    link = os.path.join(repo, "movie_director")
    if not os.path.lexists(link):
        os.symlink(ROOT, link)
    for name in ("md_empty_a", "md_empty_b"):
        folder = Path(repo) / name
        folder.mkdir(exist_ok=True)
        (folder / "blender_manifest.toml").write_text(
            f'schema_version = "1.0.0"\nid = "{name}"\nversion = "1.0.0"\nname = "{name}"\ntagline = "Empty"\n'
            'maintainer = "bench"\ntype = "add-on"\nblender_version_min = "4.2.0"\n'
            'license = ["SPDX:GPL-3.0-or-later"]\n'
        )
        (folder / "__init__.py").write_text("def register():\n    pass\n\n\ndef unregister():\n    pass\n")


#: The main thread's CPU milliseconds of each enable (on a shared machine, wall time also counts other processes).
CPU_MS: dict[str, float] = {}


def enable(name: str = "movie_director") -> tuple[Any, float]:
    """Enable an installed extension as Blender does; returns its module and the milliseconds ``enable`` took."""
    import addon_utils  # after bpy (imported by user_repo), which puts Blender's scripts/modules on the path

    errors: list[BaseException] = []
    t0, cpu = time.perf_counter(), time.thread_time()
    mod = addon_utils.enable(f"bl_ext.user_default.{name}", default_set=True, handle_error=errors.append)
    took, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - cpu) * 1000
    if errors or mod is None:
        raise SystemExit(f"enabling {name} failed: {errors}")
    CPU_MS[name] = cpu
    return mod, took


def start() -> Any:
    """Blender as at start-up: extensions installed, Blender's one-time extension set-up done (by an empty one)."""
    install()
    import addon_utils

    addon_utils.extensions_refresh()
    enable("md_empty_a")
    addon, _ = enable()
    return addon


def previews(count: int = 8) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(count):
        image = Image.new("RGB", (512, 288), (i * 30 % 256, 80, 200 - i * 20))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def preview_backend(addon: Any, images: list[bytes]) -> Any:
    """A factory for an in-process backend whose ``image`` jobs sample STEPS steps with a preview at each."""
    from importlib import import_module

    backend = import_module(f"{addon.__name__}.runtime.backend")
    jobs = import_module(f"{addon.__name__}.runtime.jobs")

    class PreviewClient(backend.BackendClient):  # type: ignore[name-defined,misc]
        name = "bench"

        async def submit(self, job: Any, ctx: Any) -> None:
            return None

        async def get_result(self, job: Any, ctx: Any) -> Any:
            ctx.mark_running()
            for i in range(STEPS):
                await asyncio.sleep(STEP_S)
                # A fresh bytes object per step, as a decoded websocket frame is.
                preview = bytes(images[i % len(images)])
                ctx.report_progress(
                    (i + 1) / STEPS, stage="sampling", step=i + 1, total=STEPS, preview=preview,
                    preview_media_type="image/jpeg",
                )  # fmt: skip
            return jobs.JobOutputs()

        async def health(self) -> Any:
            return backend.HealthInfo(ok=True, url="bench", message="in-process", version="1")

    return lambda config, network: PreviewClient(config, network)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_pump(addon: Any, callbacks: bool) -> tuple[list[float], list[float]]:
    """One run: 16 previewing jobs and a streaming Text job to the end; returns each pump's milliseconds (wall) and
    the main thread's CPU milliseconds in it (on a shared machine the wall time also counts time descheduled)."""
    import bpy

    ar = addon.addon_runtime
    from importlib import import_module

    image_ops = import_module(f"{addon.__name__}.operators.generate_image")
    llm_ops = import_module(f"{addon.__name__}.operators.llm_text")
    eta = import_module(f"{addon.__name__}.runtime.eta")
    backend = import_module(f"{addon.__name__}.runtime.backend")

    rt = ar.runtime()
    if "bench" not in rt.backends:
        config = backend.BackendConfig(name="bench", concurrency=JOBS)
        rt.register_backend("bench", preview_backend(addon, previews()), config)
    handles = [rt.submit("bench", "image", {"title": f"shot {i}"}) for i in range(JOBS)]
    text = rt.submit("local", "echo", {"steps": STEPS * 2, "delay": STEP_S / 2, "stream": True})
    workspace = bpy.context.workspace
    if callbacks:
        watch = getattr(image_ops, "watch_previews", None) or (lambda h: h.on_progress(image_ops.show_preview))
        for h in handles:
            watch(h)
        name = bpy.data.texts.new("Script").name
        text.on_text(llm_ops.text_writer(name))
    durations: list[float] = []
    cpu_ms: list[float] = []
    tick = 0
    while not all(h.done for h in handles):
        t0, c0 = time.perf_counter(), time.thread_time()
        ar.pump_timer()
        if callbacks and tick % 5 == 0:
            # The status bar's header redraws at about 10 Hz: it sums up every job (panels/statusbar.draw_status).
            summary = eta.overall(h.status() for h in rt.jobs())
            if workspace is not None and summary is not None:
                workspace.status_text_set(summary.text)
        took = time.perf_counter() - t0
        durations.append(took * 1000)
        cpu_ms.append((time.thread_time() - c0) * 1000)
        tick += 1
        time.sleep(max(0.0, ar.ACTIVE_INTERVAL - took))
    text.wait(30)
    for h in [*handles, text]:
        h.dispose()
    return durations, cpu_ms


def pump_figures(rounds: int = 3) -> dict[str, float]:
    """Rounds with and without callbacks, alternated so that machine noise hits both alike; pumps pooled."""
    addon = start()
    from importlib import import_module

    try:
        display = import_module(f"{addon.__name__}.operators.preview").display
    except ImportError:  # a version before the preview had its own module (the baseline)
        display = None
    bare: list[float] = []
    full: list[float] = []
    bare_cpu: list[float] = []
    full_cpu: list[float] = []
    shown = 0
    seconds = 0.0
    for _ in range(rounds):
        wall, cpu = run_pump(addon, callbacks=False)
        bare += wall
        bare_cpu += cpu
        before, t0 = display.updates if display else 0, time.perf_counter()
        wall, cpu = run_pump(addon, callbacks=True)
        full += wall
        full_cpu += cpu
        shown += display.updates - before if display else 0
        seconds += time.perf_counter() - t0
    interval_ms = addon.addon_runtime.ACTIVE_INTERVAL * 1000
    return {
        "pump_ms_p50_callbacks": percentile(full, 0.5),
        "pump_ms_p99_callbacks": percentile(full, 0.99),
        "pump_over_frame_callbacks": sum(d > 1000 / 60 for d in full) / len(full),
        "pump_busy_ms_per_s_callbacks": 1000 * statistics.fmean(full) / interval_ms,
        "pump_ms_p99_bare": percentile(bare, 0.99),
        "pump_cpu_ms_p99_callbacks": percentile(full_cpu, 0.99),
        "pump_cpu_ms_p99_bare": percentile(bare_cpu, 0.99),
        "pump_preview_updates_per_s": shown / seconds if display else float("nan"),
    }


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "pump"
    figures: dict[str, float] = {}
    if mode == "register":
        install()
        import addon_utils

        addon_utils.extensions_refresh()
        enable("md_empty_a")  # Blender's one-time extension set-up, which a real start-up has done already
        figures["register_peer_ms"] = enable("md_empty_b")[1]
        figures["register_ms"] = enable()[1]
        figures["register_cpu_ms"] = CPU_MS["movie_director"]
        figures["register_peer_cpu_ms"] = CPU_MS["md_empty_b"]
    if mode == "pump":
        figures.update(pump_figures())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
