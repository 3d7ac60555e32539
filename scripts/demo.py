"""`make demo`: the main job, end to end, with no GPU and no server to install.

Starts the built-in backends (ComfyUI emulator, an offline LLM, Wan2GP's MCP stand-in, an AudioLDM Gradio app, a
speech server that really speaks (eSpeak NG) and an rvc-python stand-in), enables Movie Director in a headless
Blender (the ``bpy`` module) the way Blender enables an installed extension, and through the public console API:

1. generates a five-shot storyboard (scene "Storyboard"), a still per shot with a marker each;
2. directs a written scene (scene "Rough Cut"): the LLM's shot list, then per shot an image, a clip animated from
   it, a sound effect and the keeper's line spoken (eSpeak NG) and converted to his cast voice (RVC), laid out in
   order on the Sequencer;

then saves ``demo.blend`` and, beside it, the hand-off of the rough cut: ``demo.otio`` (OpenTimelineIO, media
relative to it), ``demo.srt`` (subtitles) and ``demo_storyboard.png`` (the storyboard sheet); prints summary tables
with timings.

    python scripts/demo.py --out demo.blend [--server http://127.0.0.1:8188]   # --server: use a real ComfyUI
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
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
SCENE = (
    "Night. A lighthouse keeper climbs the spiral stairs with a lantern. "
    "Below, a green bottle rolls in the surf. "
    'He pulls out a rolled message and reads it aloud: "Come home." '
    "The beam sweeps the empty sea."
)


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


class Backends:
    """The built-in stand-ins, each on a free port of this machine; stopped together."""

    def __init__(self, comfy_url: str | None) -> None:
        from movie_director.clients.comfyui.emulator import EmulatorThread
        from movie_director.clients.llm import standin as llm_standin
        from movie_director.clients.rvc.standin_api import RvcApiStandin
        from movie_director.clients.serving import AppThread
        from movie_director.clients.speech import standin as speech_standin
        from movie_director.clients.wan2gp.standin_mcp import StandinServer

        self._stops: list = []  # type: ignore[type-arg]
        self.urls: dict[str, str] = {}
        if comfy_url:
            self.urls["comfyui"] = comfy_url
        else:
            emu = EmulatorThread(step_delay=0.02).start()
            self._stops.append(emu.stop)
            self.urls["comfyui"] = emu.url
        llm = AppThread(llm_standin.make_app).start()
        self._stops.append(llm.stop)
        self.urls["llm"] = llm.url
        wan = StandinServer(step_delay=0.005).start()
        self._stops.append(wan.stop)
        self.urls["wan2gp"] = wan.url
        tts = AppThread(speech_standin.make_app).start()  # eSpeak NG: the voice lines are real words
        self._stops.append(tts.stop)
        self.urls["speech"] = tts.url
        rvc = RvcApiStandin(voices=["keeper", "narrator"]).start()
        self._stops.append(rvc.stop)
        self.urls["rvc"] = rvc.url
        self.urls["audioldm"] = self._process("movie_director.clients.audioldm.standin", "--step-delay", "0.01")

    def _process(self, module: str, *args: str) -> str:
        """A Gradio stand-in in its own process (Gradio wants its own main thread); returns its URL."""
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", *args], stdout=subprocess.PIPE, text=True, env=env
        )
        self._stops.append(lambda: (proc.terminate(), proc.wait(10)))
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if match:
                return match.group(1)
        raise SystemExit(f"the {module} stand-in did not start")

    def stop(self) -> None:
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception as exc:
                print(f"stopping a stand-in: {exc}")


def storyboard(api, bpy, steps: int) -> tuple[list[tuple], int]:  # type: ignore[no-untyped-def]
    """Part 1: five stills from a list of prompts, one after another with a marker each."""
    scene = bpy.context.scene
    scene.name = "Storyboard"
    frame = 1
    shots = []
    for i, (prompt, seconds) in enumerate(SHOTS, start=1):
        frames = round(seconds * scene.render.fps)
        handle = api.generate_image(prompt, template="storyboard-frame", frame=frame, steps=steps, seed=1000 + i)
        handle.on_complete(_set_duration(scene.name, frame, frames))
        scene.timeline_markers.new(f"Shot {i}", frame=frame)
        shots.append((i, frame, frames, handle))
        frame += frames
    scene.frame_start, scene.frame_end = 1, frame - 1
    rows, failed = [], 0
    for i, start, frames, handle in shots:
        job = handle.wait(300)
        took = (job.finished_at or time.time()) - job.created_at
        if job.state.value != "succeeded":
            failed += 1
            rows.append((i, start, frames, f"{took:5.2f}s", f"FAILED: {job.error.message if job.error else '?'}"))
        else:
            rows.append((i, start, frames, f"{took:5.2f}s", Path(job.outputs.files[0].path).name))
    print(f"{'shot':>4}  {'frame':>5}  {'frames':>6}  {'time':>6}  file")
    for row in rows:
        print(f"{row[0]:>4}  {row[1]:>5}  {row[2]:>6}  {row[3]:>6}  {row[4]}")
    return rows, failed


def rough_cut(api, bpy) -> int:  # type: ignore[no-untyped-def]
    """Part 2: direct a written scene into a rough cut on its own Blender scene."""
    scene = bpy.data.scenes.new("Rough Cut")
    scene.render.fps = 24
    scene.render.resolution_x, scene.render.resolution_y = 1280, 720
    # The cast: the keeper's lines are spoken by the speech server's voice, then converted to the "keeper" RVC voice.
    api.set_cast("KEEPER", tts_voice="en_us_frank", rvc_voice="keeper", scene=scene)
    handle = api.direct(SCENE, scene=scene, frame=1, video_steps=8, image_params={"steps": 8})
    spec = handle.wait(600)
    api.runtime().pump()
    print(f"Scene: {spec.title}")
    print(f"{'stage':<20} {'backend':<9} {'state':<10} {'time':>6}  result")
    failed = 0
    for stage in spec.stages:
        took = (stage.finished_at or 0) - (stage.started_at or 0) if stage.started_at else 0.0
        result = Path(stage.outputs.files[0].path).name if stage.outputs and stage.outputs.files else stage.error
        if stage.id == "shots" and stage.outputs:
            result = f"{len(stage.outputs.data.get('shot_list', {}).get('shots', []))} shots"
        failed += stage.state.value != "succeeded"
        print(f"{stage.id:<20} {stage.backend:<9} {stage.state.value:<10} {took:5.2f}s  {str(result)[:60]}")
    strips = list(scene.sequence_editor.strips) if scene.sequence_editor else []
    if strips:
        scene.frame_start, scene.frame_end = 1, max(s.frame_final_end for s in strips) - 1
    kinds: dict[str, int] = {}
    for strip in strips:  # a clip at another frame rate is a meta strip that plays it at its own speed
        kind = {"IMAGE": "stills", "MOVIE": "clips", "META": "clips", "SOUND": "sounds", "TEXT": "subtitles"}.get(
            strip.type, strip.type
        )
        kinds[kind] = kinds.get(kind, 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    print(f"Rough cut: {len(strips)} strips ({summary}), {len(scene.timeline_markers)} shot markers, "
          f"frames {scene.frame_start}-{scene.frame_end}")  # fmt: skip
    return failed


def handoff(api, bpy, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Part 3: the rough cut for an editor (.otio), with subtitles (.srt) and a storyboard sheet (.png)."""
    scene = bpy.data.scenes["Rough Cut"]
    for path in (
        api.export_cut(str(out.with_suffix(".otio")), scene=scene),
        api.export_cut(str(out.with_suffix(".srt")), scene=scene),
        api.storyboard_sheet(str(out.with_name(out.stem + "_storyboard.png")), scene=scene),
    ):
        print(f"{path.name:<24} {path.stat().st_size:>8} bytes")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo.blend", help="where to save the .blend (default: demo.blend)")
    parser.add_argument("--server", help="a real ComfyUI URL instead of the built-in emulator")
    parser.add_argument("--steps", type=int, default=12, help="sampler steps per storyboard shot")
    args = parser.parse_args(argv)

    out = Path(args.out).resolve()
    media = out.with_name(out.stem + "_output")
    # Blender's user folders go to a temporary place: the demo never touches your own Blender configuration.
    ensure_importable()
    from movie_director.clients.scratch import scratch_root  # plain Python: bpy is not imported yet

    os.environ["BLENDER_USER_RESOURCES"] = str(scratch_root("md-demo-home-"))
    t0 = time.perf_counter()
    import bpy

    backends = Backends(args.server)
    # The stand-ins' libraries (uvicorn, mcp, httpx) log every request at INFO: keep the demo's output readable.
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("httpx", "mcp", "uvicorn", "uvicorn.access", "gradio_client", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        addon = enable_addon()
        api = addon.api  # type: ignore[attr-defined]
        prefs = bpy.context.preferences.addons[MODULE].preferences
        for name, url in backends.urls.items():
            getattr(prefs, name).urls = url
        prefs.comfyui.concurrency = 2
        prefs.output_dir = str(media)
        t_ready = time.perf_counter()

        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.context.scene.render.fps = 24
        bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y = 1280, 720
        for name in backends.urls:
            health = api.test_connection(name)
            print(f"{name:<9} {'ok' if health.ok else 'NOT REACHABLE'}: {health.message}")
            if not health.ok:
                return 1

        print("\nPart 1: a storyboard")
        _, failed_board = storyboard(api, bpy, args.steps)
        t_board = time.perf_counter()
        print("\nPart 2: directing a scene")
        failed_cut = rough_cut(api, bpy)
        t_cut = time.perf_counter()

        bpy.ops.wm.save_as_mainfile(filepath=str(out))
        print("\nPart 3: the hand-off")
        handoff(api, bpy, out)
        t_handoff = time.perf_counter()
        print()
        print(f"Set-up (Blender, add-on, servers): {t_ready - t0:.2f} s")
        print(f"Storyboard:                        {t_board - t_ready:.2f} s")
        print(f"Rough cut:                         {t_cut - t_board:.2f} s")
        print(f"Hand-off:                          {t_handoff - t_cut:.2f} s")
        print(f"Saved {out} (scenes: {', '.join(s.name for s in bpy.data.scenes)}); media in {media}")
        return 1 if failed_board or failed_cut else 0
    finally:
        addon_utils_disable()
        backends.stop()


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
