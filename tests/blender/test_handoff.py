"""The hand-off in real Blender: a rough cut (stills, a 16 fps clip in its retiming meta strip, a sound, a voice,
subtitles, shot markers) exported to OpenTimelineIO and read back with opentimelineio against the Sequencer,
imported into a fresh scene, written as EDL / FCP XML / SRT, a storyboard sheet, and rendered with progress and
cancel; bad input is a clear error and leaves no file."""

from __future__ import annotations

import importlib
import json
import wave
from pathlib import Path
from types import ModuleType
from typing import Any

import opentimelineio as otio
import pytest
from movie_director.clients.media import write_avi
from PIL import Image

SIZE = (64, 36)
FPS = 24


def _media(tmp: Path) -> dict[str, str]:
    media = tmp / "media"
    media.mkdir()
    out = {}
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)], start=1):
        Image.new("RGB", SIZE, color).save(media / f"still{i}.png")
        out[f"still{i}"] = str(media / f"still{i}.png")
    frames = [Image.new("RGB", SIZE, (10 + 15 * i, 0, 0)) for i in range(16)]
    out["clip"] = str(write_avi(media / "clip.avi", frames, fps=16, size=SIZE, quality=90))
    for name, seconds in (("sound", 2.0), ("voice", 1.0)):
        with wave.open(str(media / f"{name}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes(b"\x00\x10" * int(16000 * seconds))
        out[name] = str(media / f"{name}.wav")
    return out


def _mods(addon: ModuleType) -> Any:
    class M:
        seq = importlib.import_module(".operators.sequencer", addon.__name__)
        reader = importlib.import_module(".operators.cut_reader", addon.__name__)
        subs = importlib.import_module(".operators.subtitles", addon.__name__)
        handoff = importlib.import_module(".operators.handoff", addon.__name__)

    return M


def _rough_cut(addon: ModuleType, tmp: Path) -> Any:
    """Laid out as the Director lays out a cut: shots 1-3 of 2 s, 1 s, 1.5 s; a clip over shot 2; voice in shot 3."""
    import bpy

    m = _mods(addon)
    media = _media(tmp)
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.name = "Rough Cut"
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = *SIZE, 100
    scene.view_settings.view_transform = "Standard"
    scene.sequence_editor_create()
    shots = [(1, 48, "A lighthouse on a cliff"), (49, 24, "The keeper climbs"), (73, 36, "He reads the message")]
    for i, (frame, length, _) in enumerate(shots, start=1):
        still = m.seq.place_image(
            scene, media[f"still{i}"], frame=frame, duration=length, name=f"Shot {i} image", channel=1
        )
        still["movie_director_stage"] = f"shot{i}.image"
        still[m.reader.GENERATION_KEY] = json.dumps(
            {"backend": "comfyui", "model": "sd15", "seed": 1000 + i, "prompt": f"p{i}"}
        )
        scene.timeline_markers.new(f"Shot {i}: {shots[i - 1][2]}", frame=frame)
    clip = m.seq.place_movie(scene, media["clip"], frame=49, duration=24, name="Shot 2 clip", channel=2)
    clip["movie_director_stage"] = "shot2.video"
    clip["takes"] = json.dumps(["/old/take1.mp4"])
    m.seq.place_sound(scene, media["sound"], frame=1, duration=40, name="Shot 1 sound", channel=3)
    voice = m.seq.place_sound(scene, media["voice"], frame=80, name="Shot 3 line 1 voice", channel=4)
    voice["movie_director_stage"] = "shot3.line1.voice"
    scene[m.reader.SHOTS_KEY] = json.dumps(
        [
            {"index": i, "frame": f, "length": n, "description": d, "dialogue": []}
            for i, (f, n, d) in enumerate(shots, start=1)
        ]
    )
    data = json.loads(scene[m.reader.SHOTS_KEY])
    data[2]["dialogue"] = [{"character": "KEEPER", "line": "Come home."}]
    data[0]["dialogue"] = [{"character": "NARRATOR", "line": "Night."}, {"character": "NARRATOR", "line": "Fog."}]
    scene[m.reader.SHOTS_KEY] = json.dumps(data)
    assert m.subs.sync(scene) == 3
    scene.frame_start, scene.frame_end = 1, 108
    return scene


def _strips(scene: Any) -> list[Any]:
    return sorted(scene.sequence_editor.strips, key=lambda s: (s.channel, s.frame_final_start))


def test_subtitles_follow_the_voice_or_share_the_shot(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    texts = {s.text: s for s in scene.sequence_editor.strips if s.type == "TEXT"}
    assert (texts["Come home."].frame_final_start, texts["Come home."].frame_final_duration) == (
        80,
        24,
    )  # the voice (1 s)
    assert (texts["Night."].frame_final_start, texts["Night."].frame_final_duration) == (1, 24)  # half of shot 1
    assert (texts["Fog."].frame_final_start, texts["Fog."].frame_final_end) == (25, 49)
    assert {s.channel for s in texts.values()} == {6}
    _mods(addon).subs.sync(scene)  # again: rebuilt, not doubled
    assert len([s for s in scene.sequence_editor.strips if s.type == "TEXT"]) == 3


def test_the_otio_file_reads_back_as_the_sequencer_holds_the_cut(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    path = addon.api.export_cut(str(out / "cut.otio"), scene=scene)
    timeline = otio.adapters.read_from_file(str(path))
    assert timeline.global_start_time.to_frames() == 1 and timeline.global_start_time.rate == FPS
    channels = sorted({s.channel for s in scene.sequence_editor.strips})
    assert [t.metadata["movie_director"]["channel"] for t in timeline.tracks] == channels
    kinds = [t.kind for t in timeline.tracks]
    assert kinds == ["Video", "Video", "Audio", "Audio", "Video"]
    for track in timeline.tracks:
        strips = [s for s in _strips(scene) if s.channel == track.metadata["movie_director"]["channel"]]
        clips = list(track.find_clips())
        assert [c.name for c in clips] == [s.name for s in strips]  # clip order
        for clip, strip in zip(clips, strips, strict=True):
            where = clip.range_in_parent()
            assert where.start_time.to_frames() + 1 == strip.frame_final_start
            assert where.duration.to_frames() == strip.frame_final_duration
    markers = timeline.tracks.markers
    assert [(m.name, m.marked_range.start_time.to_frames() + 1) for m in markers] == [
        (m.name, m.frame) for m in sorted(scene.timeline_markers, key=lambda m: m.frame)
    ]
    # the 16 fps clip in its meta strip: its own rate, its real 16 frames over 24 scene frames, no speed-up
    clip = next(c for c in timeline.find_clips() if c.name == "Shot 2 clip")
    assert clip.source_range.start_time.rate == 16 and clip.source_range.start_time.value == 0
    assert clip.media_reference.available_range.duration.value == 16
    assert clip.available_range().duration.rescaled_to(FPS).value == pytest.approx(24)
    assert not [e for e in clip.effects if isinstance(e, otio.schema.LinearTimeWarp)]
    assert clip.media_reference.target_url == "../media/clip.avi"  # relative to the output folder
    assert list(clip.metadata["movie_director"]["takes"]) == ["/old/take1.mp4"]
    still = next(c for c in timeline.find_clips() if c.name == "Shot 1 image")
    generation = still.metadata["movie_director"]["generation"]
    assert (generation["backend"], generation["model"], generation["seed"], generation["prompt"]) == (
        "comfyui", "sd15", 1001, "p1",
    )  # fmt: skip
    subtitle = next(c for c in timeline.find_clips() if c.name == "Shot 3 line 1 subtitle")
    assert subtitle.media_reference.parameters["text"] == "Come home."
    assert [p.name for p in out.iterdir()] == ["cut.otio"]  # nothing half-written beside it


def test_a_clip_laid_frame_for_frame_at_another_rate_carries_its_speed(addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    scene = _rough_cut(addon, tmp_path)
    strip = scene.sequence_editor.strips.new_movie(
        name="fast", filepath=str(tmp_path / "media" / "clip.avi"), channel=7, frame_start=1
    )
    assert strip.frame_final_duration == 16  # 16 frames at 24 fps: 1.5 times too fast
    path = addon.api.export_cut(str(tmp_path / "cut.otio"), scene=scene)
    clip = next(c for c in otio.adapters.read_from_file(str(path)).find_clips() if c.name == "fast")
    warp = [e for e in clip.effects if isinstance(e, otio.schema.LinearTimeWarp)]
    assert len(warp) == 1 and warp[0].time_scalar == pytest.approx(1.5)
    assert bpy.context.scene == scene


def test_an_import_into_a_fresh_scene_rebuilds_the_same_cut(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    fast = scene.sequence_editor.strips.new_movie(  # off-speed, trimmed: 4 frames off its front
        name="fast", filepath=str(tmp_path / "media" / "clip.avi"), channel=7, frame_start=1
    )
    fast.frame_final_start = 5
    path = addon.api.export_cut(str(tmp_path / "cut.otio"), scene=scene)
    rebuilt = addon.api.import_cut(str(path), name="Imported")
    again = next(s for s in rebuilt.sequence_editor.strips if s.name == "fast")
    assert (again.type, again.frame_start, again.frame_final_start, again.frame_final_end) == ("MOVIE", 1, 5, 17)
    assert rebuilt.name == "Imported" and rebuilt != scene

    def summary(s: Any) -> list[tuple[Any, ...]]:
        out = []
        for strip in _strips(s):
            media = _mods(addon).seq.movie_path(strip) if strip.type in ("MOVIE", "META") else ""
            media = media or (strip.sound.filepath if strip.type == "SOUND" else "")
            media = media or (strip.elements[0].filename if strip.type == "IMAGE" else "")
            out.append((strip.name, strip.type, strip.channel, strip.frame_final_start, strip.frame_final_duration,
                        Path(media).name, getattr(strip, "text", ""), strip.get("movie_director_stage")))  # fmt: skip
        return out

    assert summary(rebuilt) == summary(scene)
    assert [(m.name, m.frame) for m in rebuilt.timeline_markers] == [(m.name, m.frame) for m in scene.timeline_markers]
    assert (rebuilt.frame_start, rebuilt.frame_end, rebuilt.render.fps) == (1, 108, FPS)
    meta = next(s for s in rebuilt.sequence_editor.strips if s.name == "Shot 2 clip")
    assert meta.type == "META"  # the 16 fps clip plays at its own speed again


def test_edl_fcp_xml_and_srt_are_written_by_their_adapters(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    edl = addon.api.export_cut(str(tmp_path / "cut.edl"), scene=scene).read_text()
    assert "TITLE: Rough Cut" in edl and "FROM CLIP NAME:  Shot 2 clip" in edl
    back = otio.adapters.read_from_string(edl, "cmx_3600", rate=FPS)
    assert [c.name for c in back.find_clips()] == ["Shot 1 image", "Shot 2 clip", "Shot 3 image"]
    xml = addon.api.export_cut(str(tmp_path / "cut.xml"), scene=scene)
    seq = otio.adapters.read_from_file(str(xml))
    assert {c.name for c in seq.find_clips()} >= {"Shot 1 image", "Shot 2 clip", "Shot 1 sound"}
    srt = addon.api.export_cut(str(tmp_path / "cut.srt"), scene=scene).read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,000\nNight.\n")
    assert "3\n00:00:03,292 --> 00:00:04,292\nCome home.\n" in srt


def test_the_storyboard_sheet_is_a_png_with_every_shot(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    path = addon.api.storyboard_sheet(str(tmp_path / "sheet.png"), scene=scene)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] == 24 + 3 * (480 + 24)
        rgb = img.convert("RGB")
        # each still is pasted (its colour in the middle of its frame), and words were drawn (dark pixels)
        assert rgb.getpixel((24 + 240, 24 * 2 + 32 + 135))[0] > 150
        assert rgb.getpixel((24 + 504 + 240, 24 * 2 + 32 + 135))[1] > 150
        assert sum(1 for p in rgb.get_flattened_data() if sum(p) < 150) > 500
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["sheet.png"]


def test_render_reports_progress_and_writes_the_movie(addon: ModuleType, tmp_path: Path) -> None:
    scene = _rough_cut(addon, tmp_path)
    scene.frame_end = 30
    seen: list[tuple[int, int]] = []
    path = addon.api.render_cut(
        str(tmp_path / "cut.mp4"), scene=scene, on_progress=lambda r: seen.append((r.done, r.total))
    )
    assert path.is_file() and path.stat().st_size > 1000
    check = __import__("bpy").data.scenes.new("check")
    movie = check.sequence_editor_create().strips.new_movie(name="m", filepath=str(path), channel=1, frame_start=1)
    assert (movie.frame_final_duration, round(movie.fps)) == (30, FPS)  # every frame, at the scene's rate
    sound = check.sequence_editor.strips.new_sound(name="s", filepath=str(path), channel=2, frame_start=1)
    assert sound.frame_final_duration >= 29  # the cut's sounds were mixed in
    assert seen[0] == (1, 31) and seen[-1] == (31, 31) and len(seen) == 31
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "media"]  # no frames left behind
    assert (scene.frame_current, scene.render.image_settings.media_type) == (1, "IMAGE")  # settings put back


def test_a_cancelled_render_leaves_nothing(addon: ModuleType, tmp_path: Path) -> None:
    HandoffError = _mods(addon).handoff.HandoffError
    scene = _rough_cut(addon, tmp_path)

    def stop_at_five(render: Any) -> None:
        if render.done == 5:
            render.cancel()

    with pytest.raises(HandoffError, match="cancelled"):
        addon.api.render_cut(str(tmp_path / "cut.mp4"), scene=scene, on_progress=stop_at_five)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media"]


def test_bad_input_is_a_clear_error_and_writes_nothing(addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    HandoffError = _mods(addon).handoff.HandoffError
    bpy.ops.wm.read_homefile(use_empty=True)
    with pytest.raises(HandoffError, match="nothing on its Sequencer"):
        addon.api.export_cut(str(tmp_path / "empty.otio"))
    scene = _rough_cut(addon, tmp_path)
    strip = next(s for s in scene.sequence_editor.strips if s.name == "Shot 1 sound")
    strip.sound.filepath = "//media/sound.wav"  # relative to a .blend that was never saved
    with pytest.raises(HandoffError, match=r"Shot 1 sound.*not saved"):
        addon.api.export_cut(str(tmp_path / "rel.otio"), scene=scene)
    strip.sound.filepath = str(tmp_path / "media" / "sound.wav")
    (tmp_path / "media" / "clip.avi").rename(tmp_path / "moved.avi")
    with pytest.raises(HandoffError, match=r"Media missing.*Shot 2 clip .*clip\.avi"):
        addon.api.export_cut(str(tmp_path / "moved.otio"), scene=scene)
    with pytest.raises(HandoffError, match="Media missing"):
        addon.api.render_cut(str(tmp_path / "moved.mp4"), scene=scene)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "moved.avi"]


def test_the_operators_export_render_and_draw_in_the_direct_panel(addon: ModuleType, tmp_path: Path) -> None:
    import bpy
    from blender_support import LayoutRecorder

    scene = _rough_cut(addon, tmp_path)
    scene.frame_end = 6
    assert bpy.ops.moviedir.export_cut(filepath=str(tmp_path / "cut.edl"), file_format="EDL") == {"FINISHED"}
    assert bpy.ops.moviedir.storyboard_sheet(filepath=str(tmp_path / "sheet.png")) == {"FINISHED"}
    assert bpy.ops.moviedir.render_cut(filepath=str(tmp_path / "cut.mkv")) == {"FINISHED"}  # headless: inline
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.edl", "cut.mkv", "media", "sheet.png"]
    with pytest.raises(RuntimeError, match="not one"):  # the operator reports the error (raised by bpy.ops)
        bpy.ops.moviedir.render_cut(filepath=str(tmp_path / "cut.gif"))
    calls: list[tuple[str, str]] = []
    panel = importlib.import_module(".panels.direct", addon.__name__)
    panel._draw_handoff(LayoutRecorder(calls))
    assert ("operator", "moviedir.render_cut") in calls and ("operator", "moviedir.export_cut") in calls
    handoff = _mods(addon).handoff
    for menu, draw in handoff.MENUS:  # File > Export / Import, the Sequencer's View menu
        assert draw in getattr(bpy.types, menu)._dyn_ui_initialize()


def test_the_import_operator_switches_to_the_rebuilt_scene(addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    scene = _rough_cut(addon, tmp_path)
    path = addon.api.export_cut(str(tmp_path / "cut.otio"), scene=scene)
    before = set(bpy.data.scenes.keys())
    assert bpy.ops.moviedir.import_cut(filepath=str(path)) == {"FINISHED"}
    (new,) = set(bpy.data.scenes.keys()) - before
    assert len(bpy.data.scenes[new].sequence_editor.strips) == len(scene.sequence_editor.strips)


def test_a_strip_generated_outside_the_director_exports_what_made_it(addon: ModuleType, tmp_path: Path) -> None:
    m = _mods(addon)
    scene = _rough_cut(addon, tmp_path)
    still = next(s for s in scene.sequence_editor.strips if s.name == "Shot 2 image")
    del still[m.reader.GENERATION_KEY]
    origin = {
        "backend": "comfyui",
        "kind": "image",
        "request": {"template": "txt2img", "params": {"prompt": "q", "seed": 9}},
    }
    m.seq.remember_take(still, m.seq.current_file(still), origin)
    path = addon.api.export_cut(str(tmp_path / "cut.otio"), scene=scene)
    clip = next(c for c in otio.adapters.read_from_file(str(path)).find_clips() if c.name == "Shot 2 image")
    meta = clip.metadata["movie_director"]
    assert dict(meta["generation"]) == {
        "backend": "comfyui",
        "kind": "image",
        "model": "txt2img",
        "seed": 9,
        "prompt": "q",
    }
    assert list(meta["takes"]) == [str(tmp_path / "media" / "still2.png")]
