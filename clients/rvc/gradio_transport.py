"""RVC through an Applio-style Gradio app: voices from its model list, conversion through its inference function,
training as preprocess -> extract -> train -> index.

Plain Python: this module never imports bpy. Wire facts: ``docs/protocols/rvc-audioldm.md`` ("Applio 3.6.x") and
``gradio.md``; the Gradio plumbing (one gradio_client per app, deadlines, cancel, safe downloads) is
:mod:`..gradio_app`.

Applio names no endpoint, so Gradio names them after its functions; since 3.x conversion and training go through
``enforce_terms(terms_accepted, *args)`` wrappers (``/enforce_terms``, ``/enforce_terms_1``), whose inputs Gradio can
only call ``param_1``, ``param_2``... Endpoints are therefore found by name where the name says something, else by
their parameters' names and *labels* ("Select Audio", "Voice Model"), and arguments are built by parameter *role* with
the app's own defaults elsewhere, so versions that add or reorder inputs keep working. The terms box is ticked, the
recording goes through the app's own upload handler and is then chosen by its server path, the custom embedder is
left empty, and an answer of ``(message, None)`` fails the job with the app's message. Voices are the app's ``.pth``
files, named by file stem (``logs/alice/alice.pth`` -> ``alice``), each with the ``.index`` beside it when there is
one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...runtime.backend import HealthInfo
from ...runtime.errors import InvalidRequestError, JobFailedError, MovieDirectorError, NotFoundError, ProtocolError
from ...runtime.jobs import JobOutputs
from ..gradio_app import EndpointMatch, EndpointQuery, GradioRunner, Role
from .request import dataset_files
from .transport import GRADIO

if TYPE_CHECKING:
    from ...runtime.context import JobContext
    from .request import ConvertRequest, TrainRequest
    from .transport import VoiceHost

log = logging.getLogger(__name__)

_MODEL_SUFFIXES = (".pth", ".onnx")
_AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
MAX_VOICES = 10_000
#: Applio's answers that say a step did not happen (its training steps return these instead of raising; its
#: ``enforce_terms`` wrapper returns ``(message, None)`` for an unticked box or a conversion that raised).
_FAILED_WORDS = ("failed", "error occurred", "must agree")
#: How long the best-effort "stop training" call may take when a training job is cancelled.
STOP_TIMEOUT = 10.0

#: Applio's "I agree to the terms of use" checkbox, the first input of its ``enforce_terms`` wrappers.
_TERMS = Role(("terms_accepted", "i agree to the terms", "terms of use"), components=("Checkbox",), required=False)
INFER = EndpointQuery(
    names=("run_infer_script", "infer", "infer_convert", "convert_audio"),
    roles={
        "terms": _TERMS,
        "audio": Role(("input_path", "input_audio", "select audio", "input audio"),
                      components=("Audio", "File", "Textbox", "Dropdown")),
        "model": Role(("pth_path", "model_file", "voice model"), components=("Dropdown", "Textbox")),
        "pitch": Role(("pitch", "transpose", "f0up_key"), components=("Slider", "Number")),
        "index": Role(("index_path", "index_file", "index file"), required=False),
        "index_rate": Role(("index_rate", "search feature ratio"), required=False),
        "rms_mix_rate": Role(("rms_mix_rate", "volume_envelope", "volume envelope"), required=False),
        "protect": Role(("protect",), required=False),
        "filter_radius": Role(("filter_radius", "filter radius"), required=False),
        "f0_method": Role(("f0_method", "f0method", "pitch extraction"), required=False),
        "speaker": Role(("sid", "speaker"), required=False),
        "output_path": Role(("output_path", "output path"), components=("Textbox",), required=False),
        "export_format": Role(("export_format", "export format"), required=False),
        "embedder_custom": Role(("embedder_model_custom", "select custom embedder"), components=("Dropdown",),
                                required=False),
    },
    what="voice conversion endpoint",
)  # fmt: skip
#: Applio 3.6's "Upload Audio" handler: the file lands in its audio folder, and the answer is the "Select Audio" value.
UPLOAD_AUDIO = EndpointQuery(
    names=("save_to_wav2",),
    roles={"file": Role(("upload_audio", "upload audio"), components=("Audio", "File"))},
    what="audio upload endpoint",
)
REFRESH = EndpointQuery(
    names=("change_choices", "refresh_models"),
    roles={"model": Role(("model",), required=False)},
    what="voice list endpoint",
)
UPLOAD = EndpointQuery(
    names=("save_drop_dataset_audio", "upload_to_dataset"),
    roles={
        "file": Role(("dropbox", "file", "audio"), components=("File", "Audio")),
        "dataset": Role(("dataset_name", "dataset")),
    },
    what="dataset upload endpoint",
)
STOP = EndpointQuery(names=("stop_train",), roles={"name": Role(("model_name", "model name"))}, what="stop endpoint")
_NAME = Role(("model_name", "exp_dir", "experiment", "model name"))
_SAMPLE_RATE = Role(("sample_rate", "sampling_rate", "sampling rate"), required=False)
_VERSION = Role(("rvc_version", "version"), required=False)
_GUIDANCE = Role(("pitch_guidance", "if_f0"), required=False)
_CUSTOM_EMBEDDER = Role(("embedder_model_custom", "select custom embedder"), components=("Dropdown",), required=False)
STAGES = {
    "preprocess": EndpointQuery(
        names=("run_preprocess_script", "preprocess_dataset", "train_preprocess"),
        roles={
            "name": _NAME,
            "dataset": Role(("dataset_path", "trainset_dir", "dataset path", "dataset")),
            "sample_rate": _SAMPLE_RATE,
        },
        what="preprocess endpoint",
    ),
    "extract": EndpointQuery(
        names=("run_extract_script", "extract_features", "train_extract_f0_feature"),
        roles={
            "name": _NAME,
            "f0_method": Role(("f0_method", "f0method", "pitch extraction"), required=False),
            "sample_rate": _SAMPLE_RATE,
            "version": _VERSION,
            "pitch_guidance": _GUIDANCE,
            "embedder_custom": _CUSTOM_EMBEDDER,
        },
        what="feature extraction endpoint",
    ),
    "train": EndpointQuery(
        names=("run_train_script", "start_training", "train_start"),
        roles={
            "terms": _TERMS,
            "name": _NAME,
            "epochs": Role(("total_epoch", "epochs", "total epoch")),
            "save_every": Role(("save_every_epoch", "save every epoch"), required=False),
            "batch_size": Role(("batch_size", "batch size"), required=False),
            "sample_rate": _SAMPLE_RATE,
            "version": _VERSION,
            "pitch_guidance": _GUIDANCE,
            "pretrained_g": Role(("g_pretrained_path", "custom pretrained g"), ("Dropdown",), required=False),
            "pretrained_d": Role(("d_pretrained_path", "custom pretrained d"), ("Dropdown",), required=False),
        },
        what="training endpoint",
    ),
    "index": EndpointQuery(
        names=("run_index_script", "generate_index", "train_index"),
        roles={"name": _NAME, "version": _VERSION},
        what="index endpoint",
    ),
}  # fmt: skip
#: Each training stage's share of the job's progress bar (the upload of the dataset comes first).
WINDOWS = {"upload": (0.0, 0.05), "preprocess": (0.05, 0.15), "extract": (0.15, 0.25), "train": (0.25, 0.95)}
WINDOWS["index"] = (0.95, 0.99)


class _StageContext:
    """The job's context as one training stage sees it: fractions scaled into the stage's share of the bar, the
    stage named ours ("train 3/10") whatever the app calls its progress bar."""

    def __init__(self, ctx: JobContext, name: str) -> None:
        self._ctx = ctx
        self.name = name
        self.start, self.end = WINDOWS[name]

    def report_progress(self, fraction: float | None = None, **kwargs: Any) -> None:
        step, total = kwargs.get("step"), kwargs.get("total")
        kwargs["stage"] = f"{self.name} {step}/{total}" if step is not None and total else self.name
        scaled = None if fraction is None else self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0)
        self._ctx.report_progress(scaled, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _choice_values(update: Any) -> list[str]:
    """The values of a dropdown update's ``choices`` (plain values or ``[label, value]`` pairs)."""
    if not isinstance(update, Mapping) or not isinstance(update.get("choices"), list):
        return []
    values = []
    for choice in update["choices"][:MAX_VOICES]:
        value = choice[-1] if isinstance(choice, (list, tuple)) and choice else choice
        if isinstance(value, str) and value.strip():
            values.append(value[:1000])
    return values


def _message_of(data: Any) -> str:
    """The app's text in an answer (its "Output Information"), bounded."""
    items = data if isinstance(data, (list, tuple)) else (data,)
    return next((str(d)[:2000] for d in items if isinstance(d, str) and d.strip()), "")


def _says_failed(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _FAILED_WORDS)


def _fit(match: EndpointMatch, role: str, value: Any) -> Any:
    """``value`` in the form the app's control takes (Applio's radios hold "40000", not 40000)."""
    index = match.roles.get(role)
    if index is None:
        return value
    choices = match.endpoint.params[index].choices
    for choice in choices:
        if str(choice) == str(value):
            return choice
    return value


class ApplioTransport:
    kind = GRADIO
    can_train = True  # if the app has the training endpoints; train() says so when it has not

    def __init__(self, client: VoiceHost, url: str) -> None:
        self.client = client
        self.url = url
        self.runner = GradioRunner(url, backend=client.name, network=client.network, max_workers=1)
        #: voice name -> (model path, index path or "") as the app names them
        self.models: dict[str, tuple[str, str]] = {}
        #: The voice last converted there (Applio keeps the last model loaded).
        self.loaded: str | None = None

    @property
    def backend(self) -> str:
        return self.client.name

    # --- voices ---------------------------------------------------------------------------------------------------
    async def list_voices(self) -> list[str]:
        """From the app's Refresh endpoint (current files); else from the model dropdown's choices in ``/info``."""
        infer = await self.runner.find_endpoint(INFER)
        try:
            refresh = await self.runner.find_endpoint(REFRESH)
        except NotFoundError:
            refresh = None
        models: list[str] = []
        indexes: list[str] = []
        if refresh is not None:
            result = await self.runner.call(refresh, *refresh.arguments({}), deadline=30.0)
            for update in result.data if isinstance(result.data, (list, tuple)) else (result.data,):
                values = _choice_values(update)
                models += [v for v in values if v.lower().endswith(_MODEL_SUFFIXES)]
                indexes += [v for v in values if v.lower().endswith(".index")]
        else:
            model_param = infer.endpoint.params[infer.roles["model"]]
            models = [str(c) for c in model_param.choices if str(c).lower().endswith(_MODEL_SUFFIXES)]
            if "index" in infer.roles:
                index_param = infer.endpoint.params[infer.roles["index"]]
                indexes = [str(c) for c in index_param.choices if str(c).lower().endswith(".index")]
        self.models = self._name_models(models, indexes)
        return sorted(self.models)

    @staticmethod
    def _name_models(models: list[str], indexes: list[str]) -> dict[str, tuple[str, str]]:
        stems: dict[str, int] = {}
        for path in models:
            stem = posixpath.splitext(posixpath.basename(path.replace("\\", "/")))[0]
            stems[stem] = stems.get(stem, 0) + 1
        named: dict[str, tuple[str, str]] = {}
        for path in sorted(set(models)):
            norm = path.replace("\\", "/")
            stem = posixpath.splitext(posixpath.basename(norm))[0]
            folder = posixpath.dirname(norm)
            name = stem if stems[stem] == 1 else f"{posixpath.basename(folder)}/{stem}"
            same_folder = [i for i in indexes if posixpath.dirname(i.replace("\\", "/")) == folder]
            by_name = [i for i in indexes if stem in posixpath.basename(i.replace("\\", "/"))]
            named[name] = (path, (same_folder or by_name or [""])[0])
        return named

    # --- conversion -------------------------------------------------------------------------------------------------
    async def convert(self, req: ConvertRequest, ctx: JobContext, target: Path) -> Path:
        if req.voice not in self.models:
            await self.list_voices()
        if req.voice not in self.models:
            raise await self.client.unknown_voice(req.voice, self.url)
        model, index = self.models[req.voice]
        match = await self.runner.find_endpoint(INFER)
        method = _fit(match, "f0_method", req.f0method)
        choices = match.endpoint.params[match.roles["f0_method"]].choices if "f0_method" in match.roles else ()
        if choices and method not in choices:
            raise InvalidRequestError(
                f"The app at {self.url} has no pitch method {req.f0method!r}",
                backend=self.backend,
                hint=f"Pick one of: {', '.join(map(str, choices))}.",
            )
        values: dict[str, Any] = {
            "terms": True,  # Applio's "I agree to the terms of use" (see the README: using Applio means agreeing)
            "model": model,
            "index": index,
            "pitch": req.pitch,
            "index_rate": req.index_rate,
            "rms_mix_rate": req.rms_mix_rate,
            "protect": req.protect,
            "filter_radius": req.filter_radius,
            "f0_method": method,
            "speaker": _fit(match, "speaker", req.speaker_id),
            "export_format": _fit(match, "export_format", "WAV"),
            "embedder_custom": None,  # only read when the embedder is "custom"; ours is the app's default
        }
        ctx.report_progress(0.02, stage="uploading", message=f"sending {Path(req.input).name} to {self.url}")
        audio_param = match.endpoint.params[match.roles["audio"]]
        if audio_param.component in ("Dropdown", "Textbox"):  # Applio 3.6: a path on the server, chosen after upload
            values["audio"], output_path = await self._upload_audio(req, ctx)
        else:  # older Applio: the recording goes straight into its Audio input
            values["audio"], output_path = Path(req.input), ""
        if "output_path" in match.roles:  # a name of our own, so that no other user's conversion overwrites ours
            values["output_path"] = output_path or self._output_path(match)
        ctx.report_progress(0.05, stage="converting", message=f"converting to {req.voice} on {self.url}")
        args = match.arguments(values, backend=self.backend)
        result = await self.runner.call(match, *args, ctx=ctx, deadline=self.client.job_timeout)
        self.loaded = req.voice
        audio = [f for f in result.files if f.media_type.startswith("audio/") or f.name.endswith(_AUDIO_SUFFIXES)]
        for extra in result.files:
            if extra not in audio[:1]:
                Path(extra.path).unlink(missing_ok=True)
        if not audio:
            message = _message_of(result.data)
            if message:  # Applio's "(message, None)": the app's own words for what went wrong
                raise JobFailedError(f"The app at {self.url} did not convert: {message[:300]}", backend=self.backend)
            raise ProtocolError(f"The app at {self.url} answered without converted audio", backend=self.backend)
        got = Path(audio[0].path)
        final = target.with_suffix(got.suffix.lower() or ".wav")
        os.replace(got, final)
        return final

    async def _upload_audio(self, req: ConvertRequest, ctx: JobContext) -> tuple[str, str]:
        """Applio 3.6's own upload step: the recording through its "Upload Audio" handler, which copies it into its
        audio folder and answers with the path the "Select Audio" dropdown then holds (and an output path). The
        file is sent under a name of its own, so that two conversions of ``line.wav`` never share a server file."""
        try:
            match = await self.runner.find_endpoint(UPLOAD_AUDIO)
        except NotFoundError:
            raise ProtocolError(
                f"The app at {self.url} takes its input audio as a path on the server but has no audio upload",
                backend=self.backend,
            ) from None
        source = Path(req.input)
        with tempfile.TemporaryDirectory(prefix="md-rvc-") as folder:
            unique = Path(folder) / f"md_{uuid.uuid4().hex[:12]}{source.suffix.lower()}"
            try:
                os.link(source, unique)
            except OSError:
                shutil.copyfile(source, unique)
            args = match.arguments({"file": unique}, backend=self.backend)
            result = await self.runner.call(match, *args, deadline=self.client.job_timeout)
        data = result.data if isinstance(result.data, (list, tuple)) else (result.data,)
        texts = [d for d in data if isinstance(d, str) and d.strip()]
        if not texts or len(texts[0]) > 4096:
            message = f"The app at {self.url} did not say where the uploaded audio went"
            raise ProtocolError(message, backend=self.backend)
        server_path = texts[0]
        output_path = texts[1] if len(texts) > 1 and len(texts[1]) <= 4096 else ""
        ctx.log(f"uploaded {source.name} to {self.url} as {server_path[-120:]}")
        return server_path, output_path

    def _output_path(self, match: EndpointMatch) -> str:
        default = match.endpoint.params[match.roles["output_path"]].default
        folder = posixpath.dirname(default.replace("\\", "/")) if isinstance(default, str) else ""
        return posixpath.join(folder, f"md_{uuid.uuid4().hex[:12]}.wav")

    # --- training -------------------------------------------------------------------------------------------------
    async def train(self, req: TrainRequest, ctx: JobContext) -> JobOutputs:
        try:
            stages = {name: await self.runner.find_endpoint(query) for name, query in STAGES.items()}
        except NotFoundError as exc:
            raise InvalidRequestError(
                f"The app at {self.url} cannot train voices (it has no {exc.message.split(' has no ')[-1][:80]})",
                backend=self.backend,
                hint="Train in Applio's own Train tab, or point Movie Director at an Applio server.",
            ) from None
        dataset = req.dataset_path or await self._upload_dataset(req, ctx)
        values: dict[str, Any] = {
            "terms": True,
            "name": req.name,
            "dataset": dataset,
            "f0_method": req.f0method,
            "version": req.rvc_version,
            "pitch_guidance": req.pitch_guidance,
            "epochs": req.epochs,
            "save_every": min(req.save_every_epoch, req.epochs),
            "batch_size": req.batch_size,
            "embedder_custom": None,
            "pretrained_g": None,
            "pretrained_d": None,
        }
        messages = []
        for name, match in stages.items():
            stage_ctx = _StageContext(ctx, name)
            stage_ctx.report_progress(0.0)
            ctx.log(f"{name}: started")
            args = {**values, "sample_rate": _fit(match, "sample_rate", req.sample_rate)}
            if "f0_method" in match.roles:
                args["f0_method"] = _fit(match, "f0_method", req.f0method)
            try:
                result = await self.runner.call(
                    match,
                    *match.arguments(args, backend=self.backend),
                    ctx=stage_ctx,  # type: ignore[arg-type]
                    deadline=self.client.job_timeout,
                )
            except asyncio.CancelledError:
                await self._stop_training(req.name, ctx)
                raise
            message = _message_of(result.data)
            messages.append(message[:500])
            ctx.log(f"{name}: {message[:200] or 'done'}")
            if _says_failed(message):  # Applio answers a failed step with a message, not an error
                raise JobFailedError(f"{name} failed on {self.url}: {message[:300]}", backend=self.backend)
            if name == "train":  # the app's last tick is lost in its completion: say the epochs are done
                stage_ctx.report_progress(1.0, step=req.epochs, total=req.epochs)
            else:
                stage_ctx.report_progress(1.0)
        voices = await self.list_voices()
        if req.name not in voices:
            raise ProtocolError(
                f"The app at {self.url} finished training but lists no voice {req.name!r}", backend=self.backend
            )
        model, index = self.models[req.name]
        data = {"voice": req.name, "server": self.url, "model": model, "index": index, "messages": messages}
        return JobOutputs(data=data)

    async def _stop_training(self, name: str, ctx: JobContext) -> None:
        """Cancelling a Gradio event does not stop Applio's training process; its "Stop Training" button does."""
        try:
            match = await self.runner.find_endpoint(STOP)
            args = match.arguments({"name": name}, backend=self.backend)
            await asyncio.shield(self.runner.call(match, *args, deadline=STOP_TIMEOUT))
            ctx.log(f"asked {self.url} to stop training {name}")
        except (MovieDirectorError, asyncio.CancelledError) as exc:
            log.warning("could not stop the training of %s on %s: %s", name, self.url, exc)

    async def _upload_dataset(self, req: TrainRequest, ctx: JobContext) -> str:
        """Every recording of the local dataset through the app's dataset upload; returns the folder it made."""
        try:
            match = await self.runner.find_endpoint(UPLOAD)
        except NotFoundError:
            raise InvalidRequestError(
                f"The app at {self.url} cannot receive a dataset",
                backend=self.backend,
                hint="Copy the recordings to the server and give their folder there as dataset_path.",
            ) from None
        files = dataset_files(req.dataset)
        stage = _StageContext(ctx, "upload")
        ctx.mark_running()
        folder = ""
        for i, path in enumerate(files):
            stage.report_progress(i / len(files), step=i, total=len(files), message=path.name)
            result = await self.runner.call(
                match,
                *match.arguments({"file": path, "dataset": req.name}, backend=self.backend),
                deadline=self.client.job_timeout,
            )
            data = result.data if isinstance(result.data, (list, tuple)) else (result.data,)
            folder = next((d for d in reversed(data) if isinstance(d, str) and d), folder)
        if not folder:
            raise ProtocolError(f"The app at {self.url} did not say where the dataset went", backend=self.backend)
        ctx.log(f"upload: {len(files)} recordings in {folder}")
        return folder

    async def health(self) -> HealthInfo:
        info = await self.runner.health()
        if not info.ok:
            return info
        try:
            await self.runner.find_endpoint(INFER)
            voices = await self.list_voices()
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=self.url, message=str(exc), version=info.version)
        count = f"{len(voices)} voice{'s' if len(voices) != 1 else ''}"
        return info.model_copy(update={"message": f"Applio-style app ({info.message}) with {count}"})

    async def close(self) -> None:
        await self.runner.close()
