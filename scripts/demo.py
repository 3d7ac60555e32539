"""`make demo`: the main job, end to end, with no GPU and no server to install.

Starts the built-in ComfyUI emulator, enables Movie Director in a headless Blender (the ``bpy`` module) the way
Blender enables an installed extension, generates a short storyboard through the public console API, lays the shots
out on the Sequencer with a marker each, saves ``demo.blend`` and prints a summary with timings.

    python scripts/demo.py --out demo.blend [--server http://127.0.0.1:8188]   # --server: use a real ComfyUI
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bootstrap import ROOT, ensure_importable

SHOTS = [
    ("Night. A lighthouse on a cliff, its beam sweeping the fog", 2.0),
    ("The keeper climbs the spiral stairs with a lantern", 2.0),
    ("A green glass bottle rolls in the surf below", 1.5),
    ("Close-up: a rolled message inside the bottle", 1.5),
    ("The keeper reads the message by lantern light", 2.5),
]
MODULE = "bl_ext.user_default.movie_director"


def enable_addon() -> object:
    """Install this checkout into a throw-away user extension repository and enable it, as Blender would."""
    import addon_utils
    import bpy

    repo = bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True)
    link = Path(repo) / "movie_director"
    if not link.exists():
        link.symlink_to(ROOT)
    errors: list[BaseException] = []
    module = addon_utils.enable(MODULE, default_set=True, handle_error=errors.append)
    if module is None:
        raise SystemExit(f"could not enable Movie Director: {errors}")
    return module


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo.blend", help="where to save the .blend (default: demo.blend)")
    parser.add_argument("--server", help="a real ComfyUI URL instead of the built-in emulator")
    parser.add_argument("--steps", type=int, default=12, help="sampler steps per shot")
    args = parser.parse_args(argv)

    out = Path(args.out).resolve()
    media = out.with_name(out.stem + "_output")
    # Blender's user folders go to a temporary place: the demo never touches your own Blender configuration.
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="md-demo-home-")
    ensure_importable()
    t0 = time.perf_counter()
    import bpy
    from movie_director.clients.comfyui.emulator import EmulatorThread

    emulator = None
    url = args.server
    if not url:
        emulator = EmulatorThread(step_delay=0.03).start()
        url = emulator.url
        print(f"ComfyUI emulator listening on {url}")
    try:
        addon = enable_addon()
        api = addon.api  # type: ignore[attr-defined]
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.comfyui.urls = url
        prefs.comfyui.concurrency = 2
        prefs.output_dir = str(media)
        t_ready = time.perf_counter()

        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        scene.name = "Lighthouse"
        scene.render.fps = 24
        scene.render.resolution_x, scene.render.resolution_y = 1280, 720
        health = api.test_connection("comfyui")
        print(f"Server: {health.message} ({'ok' if health.ok else 'NOT REACHABLE'})")
        if not health.ok:
            return 1

        frame = 1
        shots = []
        for i, (prompt, seconds) in enumerate(SHOTS, start=1):
            frames = round(seconds * scene.render.fps)
            handle = api.generate_image(
                prompt, template="storyboard-frame", frame=frame, steps=args.steps, seed=1000 + i
            )
            handle.on_complete(_set_duration(scene.name, frame, frames))
            last_line = [""]

            def report(job, i=i, last_line=last_line):  # type: ignore[no-untyped-def]
                p = job.progress
                line = f"  shot {i}: {p.stage or job.state.value} {p.step or ''}/{p.total or ''} {p.fraction:.0%}"
                if line != last_line[0]:
                    last_line[0] = line
                    print(line)

            handle.on_progress(report)
            scene.timeline_markers.new(f"Shot {i}", frame=frame)
            shots.append((i, frame, frames, handle))
            frame += frames
        scene.frame_start, scene.frame_end = 1, frame - 1

        print(f"Generating {len(shots)} shots...")
        rows = []
        failed = 0
        for i, start, frames, handle in shots:
            job = handle.wait(300)
            took = (job.finished_at or time.time()) - job.created_at
            if job.state.value != "succeeded":
                failed += 1
                rows.append((i, start, frames, f"{took:5.2f}s", f"FAILED: {job.error.message if job.error else '?'}"))
                continue
            rows.append((i, start, frames, f"{took:5.2f}s", Path(job.outputs.files[0].path).name))

        bpy.ops.wm.save_as_mainfile(filepath=str(out))
        t_end = time.perf_counter()
        strips = list(scene.sequence_editor.strips) if scene.sequence_editor else []

        print()
        print(f"{'shot':>4}  {'frame':>5}  {'frames':>6}  {'time':>6}  file")
        for row in rows:
            print(f"{row[0]:>4}  {row[1]:>5}  {row[2]:>6}  {row[3]:>6}  {row[4]}")
        print()
        print(f"Set-up (Blender, add-on, server): {t_ready - t0:.2f} s")
        print(f"Generation and placement:         {t_end - t_ready:.2f} s")
        print(f"Saved {out} with {len(strips)} image strips on the Sequencer; media in {media}")
        return 1 if failed or len(strips) != len(SHOTS) else 0
    finally:
        addon_utils_disable()
        if emulator is not None:
            emulator.stop()


def _set_duration(scene_name: str, frame: int, frames: int):  # type: ignore[no-untyped-def]
    """After placement, give the shot its own length (stills default to two seconds)."""

    def apply(job) -> None:  # type: ignore[no-untyped-def]
        import bpy

        scene = bpy.data.scenes[scene_name]
        for strip in scene.sequence_editor.strips:
            if strip.frame_final_start == frame and strip.type == "IMAGE":
                strip.frame_final_duration = frames

    return apply


def addon_utils_disable() -> None:
    import addon_utils

    addon_utils.disable(MODULE, default_set=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
