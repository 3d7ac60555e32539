"""The hand-off's plain modules, without Blender: OTIO round trip (a subprocess proves no bpy is imported), SRT,
the sheet's layout, whole-or-nothing writes, and a plain message where OpenTimelineIO is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from movie_director.clients.handoff import otio_io, sheet, srt
from movie_director.clients.handoff.cut import Clip, Cut, Marker, Shot, Track, check_media
from movie_director.clients.handoff.errors import HandoffError
from movie_director.clients.handoff.files import atomic_path, write_text


def _cut(tmp: Path) -> Cut:
    for name in ("a.png", "b.mp4", "c.wav"):
        (tmp / name).write_bytes(b"x")
    return Cut(
        name="Rough",
        fps=24,
        frame_start=1,
        frame_end=96,
        tracks=(
            Track("Channel 1", "video", 1, (Clip("s1", "still", 1, 48, str(tmp / "a.png"), source_fps=24),)),
            Track(
                "Channel 2",
                "video",
                2,
                (
                    Clip(
                        "c1",
                        "movie",
                        49,
                        48,
                        str(tmp / "b.mp4"),
                        source_fps=16,
                        source_duration=32,
                        metadata={"takes": ["x.mp4"], "generation": {"seed": 3}},
                    ),
                ),
            ),
            Track("Channel 3", "audio", 3, (Clip("snd", "sound", 10, 30, str(tmp / "c.wav"), 5.0, 24, 100.0),)),
            Track("Channel 6", "video", 6, (Clip("l1", "text", 60, 20, text="Come home."),)),
        ),
        markers=(Marker(1, "Shot 1"), Marker(49, "Shot 2")),
        shots=(Shot(1, 1, 48, "A lighthouse", (("KEEPER", "Come home."),), str(tmp / "a.png")),),
        metadata={"scene": "Rough"},
    )


def test_an_otio_file_reads_back_as_the_same_cut(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    (tmp_path / "out").mkdir()
    path = otio_io.write(cut, tmp_path / "out" / "cut.otio")
    back = otio_io.read(path)
    assert (back.name, back.fps, back.frame_start, back.frame_end, back.markers, back.shots) == (
        cut.name, cut.fps, cut.frame_start, cut.frame_end, cut.markers, cut.shots,
    )  # fmt: skip
    for got, want in zip(back.tracks, cut.tracks, strict=True):
        assert (got.name, got.kind, got.channel) == (want.name, want.kind, want.channel)
        for a, b in zip(got.clips, want.clips, strict=True):
            assert (a.name, a.kind, a.start, a.duration, a.path, a.text) == (
                b.name,
                b.kind,
                b.start,
                b.duration,
                b.path,
                b.text,
            )
            assert a.source_in == b.source_in and a.time_scalar == b.time_scalar
            assert a.metadata == b.metadata
    timeline = otio.adapters.read_from_file(str(path))
    movie = next(c for c in timeline.find_clips() if c.name == "c1")
    assert movie.media_reference.target_url == "../b.mp4"
    assert movie.source_range.start_time.rate == 16 and movie.available_range().duration.value == 32


def test_edl_and_xml_come_from_otio_adapters_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    edl = otio_io.write(cut, tmp_path / "cut.edl").read_text()
    assert edl.startswith("TITLE: Rough") and "FROM CLIP NAME:  c1" in edl and "Come home" not in edl
    assert "<xmeml" in otio_io.write(cut, tmp_path / "cut.xml").read_text()
    with pytest.raises(HandoffError, match=r"Unknown hand-off format \.aaf"):
        otio_io.write(cut, tmp_path / "cut.aaf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.mp4", "c.wav", "cut.edl", "cut.xml"]


def test_srt_numbers_and_times_the_text_clips(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    assert srt.to_srt(cut) == "1\n00:00:02,458 --> 00:00:03,292\nCome home.\n"
    assert srt.timestamp(3725.5) == "01:02:05,500"
    no_text = Cut("Empty", 24, 1, 10, tracks=cut.tracks[:1])
    with pytest.raises(HandoffError, match="no subtitles"):
        srt.to_srt(no_text)


def test_missing_media_and_empty_cuts_are_named(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    check_media(cut)
    (tmp_path / "b.mp4").unlink()
    with pytest.raises(HandoffError, match=r"Media missing .*: c1 \(.*b\.mp4\)"):
        check_media(cut)
    with pytest.raises(HandoffError, match="nothing on its Sequencer"):
        check_media(Cut("Empty", 24, 1, 10, tracks=()))


def test_a_failed_write_leaves_nothing_and_a_good_one_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "cut.otio"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert [p.name for p in tmp_path.iterdir()] == ["cut.otio"] and target.read_text() == "old"
    write_text(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["cut.otio"] and target.read_text() == "new"
    with pytest.raises(HandoffError, match="does not exist"):
        write_text(tmp_path / "nowhere" / "cut.srt", "x")


def test_the_sheet_lays_out_every_shot_under_its_still(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    shots = tuple(Shot(i, i * 10, 24, "word " * 40, (("A", "line"),), "") for i in range(1, 5))
    board = sheet.layout(Cut("Board", 24, 1, 96, (), shots=shots, width=1280, height=720))
    assert len(board.frames) == 4 and board.pictures == ()
    assert board.frames[3][1] > board.frames[0][1]  # the fourth shot starts a second row
    assert board.frames[0][3] == 270  # 16:9 stills
    assert all(len(t.text) <= sheet.CHARS_PER_LINE for t in board.text[1:])
    assert board.text[0].text == "Board - 4 shots, 4.0 s"
    assert sheet.layout(cut).pictures[0].path == str(tmp_path / "a.png")
    with pytest.raises(HandoffError, match="no shots"):
        sheet.layout(Cut("Empty", 24, 1, 10, ()))


def test_without_opentimelineio_the_export_says_plainly_it_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentimelineio", None)  # what an Intel Mac on Python 3.13 has
    with pytest.raises(HandoffError, match="unavailable on this system"):
        otio_io.write(_cut(tmp_path), tmp_path / "cut.otio")
    assert not (tmp_path / "cut.otio").exists()


def test_the_handoff_modules_never_import_bpy() -> None:
    code = (
        "import sys; import movie_director.clients.handoff.otio_io, movie_director.clients.handoff.sheet, "
        "movie_director.clients.handoff.srt, movie_director.clients.handoff.provenance; "
        "assert 'bpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("text", ["not json", '{"OTIO_SCHEMA": "Nonsense.1"}', '{"OTIO_SCHEMA": "Clip.2"}', ""])
def test_a_file_that_is_not_an_otio_timeline_is_refused_by_name(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.otio"
    path.write_text(text)
    with pytest.raises(HandoffError, match=r"bad\.otio"):
        otio_io.read(path)
    with pytest.raises(HandoffError, match=r"missing\.otio"):
        otio_io.read(tmp_path / "missing.otio")
