"""A cut to OpenTimelineIO and back; CMX 3600 EDL and FCP 7 XML through OTIO's own adapters.

Plain Python: this module never imports bpy. Conventions (those of OTIO's CMX 3600 adapter): a clip's
``source_range.duration`` is its length on the track (scene frames), ``source_range.start_time`` its first frame in
the media's own rate, and a ``LinearTimeWarp`` carries a speed other than real time. A clip at another rate (a
16 fps Wan2GP clip in a 24 fps scene) plays as recorded, so it needs no warp: its start and available range are in
16 fps. Media paths in ``.otio`` are relative to the file's folder; EDL and XML get absolute ``file://`` URLs,
which the editors that read them expect. Our own details (channel, stage, takes, generation settings) ride along
under ``metadata["movie_director"]``.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cut import Clip, ClipKind, Cut, Marker, Shot, Track, relative_path
from .errors import HandoffError
from .files import atomic_path

if TYPE_CHECKING:
    import opentimelineio as otio

KEY = "movie_director"
SUBTITLE_GENERATOR = "movie_director.subtitle"
#: File extension -> (OTIO adapter, description). The adapters come from their own packages (OTIO 0.16 moved them
#: out), found by OTIO's plug-in manifest through their entry points.
FORMATS: dict[str, tuple[str, str]] = {
    ".otio": ("otio_json", "OpenTimelineIO"),
    ".edl": ("cmx_3600", "CMX 3600 EDL"),
    ".xml": ("fcp_xml", "Final Cut Pro 7 XML"),
}
# (otio-fcpx-xml-adapter 1.0.0 fails on any cut with more than one track, so Final Cut Pro X is not offered.)


def load_otio() -> Any:
    """The ``opentimelineio`` module, or a :class:`HandoffError` saying plainly that this system has none."""
    try:
        import opentimelineio
    except ImportError as exc:
        raise HandoffError(
            "OpenTimelineIO export is unavailable on this system: the extension bundles it for Windows, Linux and "
            "Apple silicon Macs, and for Intel Macs only with Blender 4.2 to 5.0 (Python 3.11)"
        ) from exc
    return opentimelineio


def to_timeline(cut: Cut, base: Path | None) -> otio.schema.Timeline:
    """The cut as an OTIO timeline; media relative to ``base`` (absolute ``file://`` URLs when None)."""
    otio = load_otio()
    rate = cut.fps
    rt = otio.opentime.RationalTime
    timeline = otio.schema.Timeline(name=cut.name, global_start_time=rt(cut.frame_start, rate))
    timeline.metadata[KEY] = {
        "fps": rate,
        "frame_start": cut.frame_start,
        "frame_end": cut.frame_end,
        "resolution": [cut.width, cut.height],
        "shots": [_shot_data(s, base) for s in cut.shots],
        **cut.metadata,
    }
    for track in cut.tracks:
        kind = otio.schema.TrackKind.Video if track.kind == "video" else otio.schema.TrackKind.Audio
        out = otio.schema.Track(name=track.name, kind=kind, metadata={KEY: {"channel": track.channel}})
        position = cut.frame_start
        for clip in sorted(track.clips, key=lambda c: c.start):
            if clip.start < position:
                raise HandoffError(f"{clip.name!r} overlaps the strip before it on channel {track.channel}")
            if clip.start > position:
                out.append(otio.schema.Gap(source_range=_range(otio, 0, clip.start - position, rate)))
            out.append(_clip(otio, clip, base, rate, track.channel))
            position = clip.end
        timeline.tracks.append(out)
    for marker in cut.markers:
        timeline.tracks.markers.append(
            otio.schema.Marker(name=marker.name, marked_range=_range(otio, marker.frame - cut.frame_start, 0, rate))
        )
    return timeline


def _range(otio: Any, start: float, duration: float, rate: float, start_rate: float | None = None) -> Any:
    rt = otio.opentime.RationalTime
    return otio.opentime.TimeRange(rt(start, start_rate or rate), rt(duration, rate))


def _url(path: str, base: Path | None) -> str:
    return relative_path(path, base) if base is not None else Path(path).as_uri()


def _clip(otio: Any, clip: Clip, base: Path | None, rate: float, channel: int) -> Any:
    meta = {**clip.metadata, "kind": clip.kind, "channel": channel}
    if clip.kind == "text":
        ref = otio.schema.GeneratorReference(
            name="subtitle", generator_kind=SUBTITLE_GENERATOR, parameters={"text": clip.text}
        )
        return otio.schema.Clip(
            name=clip.name, media_reference=ref, source_range=_range(otio, 0, clip.duration, rate), metadata={KEY: meta}
        )
    src_rate = clip.source_fps or rate
    # Editors' XML needs the media's length: a still lasts as long as it is shown.
    length = clip.source_duration or clip.source_in + clip.duration * src_rate / rate * clip.time_scalar
    available = _range(otio, 0, length, src_rate)
    ref = otio.schema.ExternalReference(target_url=_url(clip.path, base), available_range=available)
    meta["source_fps"] = src_rate
    out = otio.schema.Clip(
        name=clip.name,
        media_reference=ref,
        source_range=_range(otio, clip.source_in, clip.duration, rate, src_rate),
        metadata={KEY: meta},
    )
    if abs(clip.time_scalar - 1.0) > 1e-6:
        out.effects.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=clip.time_scalar))
    return out


def _shot_data(shot: Shot, base: Path | None) -> dict[str, Any]:
    return {
        "index": shot.index,
        "start": shot.start,
        "duration": shot.duration,
        "description": shot.description,
        "dialogue": [list(d) for d in shot.dialogue],
        "still": _url(shot.still, base) if shot.still else "",
    }


def write(cut: Cut, path: str | Path) -> Path:
    """Write the cut in the format ``path``'s extension names (.otio, .edl, .xml); whole or not at all."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise HandoffError(f"Unknown hand-off format {suffix or '(none)'}: use one of {', '.join(FORMATS)}")
    adapter, label = FORMATS[suffix]
    otio = load_otio()
    if suffix == ".otio":
        text = otio.adapters.write_to_string(to_timeline(cut, target.parent), adapter_name=adapter)
    else:
        timeline = _for_editors(otio, to_timeline(cut, None), suffix)
        if adapter not in otio.adapters.available_adapter_names():
            raise HandoffError(f"{label} export is unavailable: its OpenTimelineIO adapter is not installed")
        options = {"rate": cut.fps} if suffix == ".edl" else {}
        try:
            text = otio.adapters.write_to_string(timeline, adapter_name=adapter, **options)
        except otio.exceptions.OTIOError as exc:
            raise HandoffError(f"{label} cannot hold this cut: {exc}") from exc
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def _for_editors(otio: Any, timeline: Any, suffix: str) -> Any:
    """EDL and XML carry media only (subtitles go to the .srt). OTIO's EDL writer writes the first track only, so
    an EDL gets the picture: the video tracks flattened, the top one winning as in Blender."""
    for track in list(timeline.tracks):
        if any(isinstance(c, otio.schema.Clip) and c.metadata[KEY]["kind"] == "text" for c in track):
            timeline.tracks.remove(track)
    rate = timeline.global_start_time.rate
    for clip in timeline.find_clips():  # XML timecode knows SMPTE rates only: a 16 fps clip is given in the cut's
        start = clip.source_range.start_time.rescaled_to(rate)
        clip.source_range = otio.opentime.TimeRange(start, clip.source_range.duration)
        if clip.media_reference.available_range is not None:
            available = clip.media_reference.available_range
            clip.media_reference.available_range = otio.opentime.TimeRange(
                available.start_time.rescaled_to(rate), available.duration.rescaled_to(rate)
            )
    if suffix != ".edl":
        return timeline
    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    if not video:
        raise HandoffError("A CMX 3600 EDL lists pictures: this cut has none (export .otio or .xml for sound)")
    flat = otio.algorithms.flatten_stack(video) if len(video) > 1 else video[0].clone()
    flat.name = "V"
    out = otio.schema.Timeline(name=timeline.name, global_start_time=timeline.global_start_time)
    out.tracks.append(flat)
    return out


def read(path: str | Path) -> Cut:
    """An ``.otio`` file back as a cut (media resolved against the file's folder)."""
    otio = load_otio()
    target = Path(path)
    if not target.is_file():
        raise HandoffError(f"{target.name} does not exist ({target})")
    try:  # the file is not trusted: OTIO raises its own errors, KeyError, ValueError... for a malformed one
        timeline = otio.adapters.read_from_file(str(target))
    except Exception as exc:
        raise HandoffError(f"Could not read {target.name}: {exc}") from exc
    if not isinstance(timeline, otio.schema.Timeline):
        raise HandoffError(f"{target.name} holds a {type(timeline).__name__}, not a timeline")
    try:
        return from_timeline(timeline, target.parent)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HandoffError(f"{target.name} is not a cut this add-on can rebuild: {exc}") from exc


def from_timeline(timeline: Any, base: Path) -> Cut:
    otio = load_otio()
    meta = _plain(timeline.metadata.get(KEY, {}))
    start_time = timeline.global_start_time
    rate = float(meta.get("fps") or (start_time.rate if start_time else 24.0))
    frame_start = round(start_time.rescaled_to(rate).value) if start_time else int(meta.get("frame_start", 1))
    tracks = []
    for number, track in enumerate(timeline.tracks, start=1):
        tmeta = _plain(track.metadata.get(KEY, {}))
        channel = int(tmeta.get("channel", number))
        kind = "audio" if track.kind == otio.schema.TrackKind.Audio else "video"
        clips = []
        for item in track:
            if not isinstance(item, otio.schema.Clip):
                continue
            clips.append(_read_clip(otio, item, base, rate, frame_start, kind))
        tracks.append(Track(name=track.name, kind=kind, channel=channel, clips=tuple(clips)))  # type: ignore[arg-type]
    markers = tuple(
        Marker(frame=frame_start + round(m.marked_range.start_time.rescaled_to(rate).value), name=m.name)
        for m in timeline.tracks.markers
    )
    shots = tuple(
        Shot(
            index=int(s["index"]),
            start=int(s["start"]),
            duration=int(s["duration"]),
            description=str(s.get("description", "")),
            dialogue=tuple((str(c), str(line)) for c, line in s.get("dialogue", [])),
            still=_path(str(s["still"]), base) if s.get("still") else "",
        )
        for s in meta.get("shots", [])
    )
    width, height = (meta.get("resolution") or [1920, 1080])[:2]
    extra = {k: v for k, v in meta.items() if k not in ("fps", "frame_start", "frame_end", "resolution", "shots")}
    last = max((c.end for t in tracks for c in t.clips), default=frame_start + 1) - 1
    return Cut(
        name=timeline.name,
        fps=rate,
        frame_start=frame_start,
        frame_end=int(meta.get("frame_end", last)),
        tracks=tuple(tracks),
        markers=markers,
        shots=shots,
        width=int(width),
        height=int(height),
        metadata=extra,
    )


def _read_clip(otio: Any, item: Any, base: Path, rate: float, frame_start: int, track_kind: str) -> Clip:
    where = item.range_in_parent()
    start = frame_start + round(where.start_time.rescaled_to(rate).value)
    duration = round(where.duration.rescaled_to(rate).value)
    meta = _plain(item.metadata.get(KEY, {}))
    ref = item.media_reference
    meta.pop("channel", None)
    if isinstance(ref, otio.schema.GeneratorReference):
        meta.pop("kind", None)
        text = str(_plain(ref.parameters).get("text", ""))
        return Clip(name=item.name, kind="text", start=start, duration=duration, text=text, metadata=meta)
    url = getattr(ref, "target_url", "") or ""
    path = _path(url, base) if url else ""
    kind: ClipKind = meta.pop("kind", None) or ("sound" if track_kind == "audio" else "movie")
    if kind not in ("still", "movie", "sound"):
        raise HandoffError(f"Clip {item.name!r} has an unknown kind {kind!r}")
    source = item.source_range.start_time
    available = ref.available_range
    scalar = 1.0
    for effect in item.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= effect.time_scalar
    meta.pop("source_fps", None)
    return Clip(
        name=item.name,
        kind=kind,
        start=start,
        duration=duration,
        path=path,
        source_in=float(source.value),
        source_fps=float(source.rate),
        source_duration=float(available.duration.rescaled_to(source.rate).value) if available else None,
        time_scalar=scalar,
        metadata=meta,
    )


def _path(url: str, base: Path) -> str:
    """A media URL as a local path: ``file://`` URLs as they are, relative ones against ``base``."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise HandoffError(f"Media at {url} is not a local file")
    path = Path(urllib.parse.unquote(url))
    return str(path if path.is_absolute() else (base / path).resolve())


def _plain(value: Any) -> Any:
    """OTIO's AnyDictionary / AnyVector as plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value
