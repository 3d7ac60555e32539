"""A stand-in for Applio 3.6 (RVC in a Gradio 6 app), built from Applio's own ``core.py`` and ``tabs/`` so that
clients meet the wiring users run: the same functions, argument lists, labels, defaults and return shapes.

Plain Python: this module never imports bpy (it needs gradio and numpy). Run it:
``python -m movie_director.clients.rvc.standin_applio --port 7865 [--root DIR] [--voices alice,bob]``; it prints its
URL once it serves. The UI (which component feeds which function) is :mod:`.standin_applio_ui`; the facts it follows
are in ``docs/protocols/rvc-audioldm.md`` ("Applio 3.6.x").

As in Applio, voices are ``.pth`` files under ``<root>/logs/<name>/`` (an ``.index`` beside them), uploaded audio goes
to ``assets/audios`` and datasets to ``assets/datasets/<name>``, all paths relative to the app's folder. The
functions below have Applio's names and signatures (Gradio names endpoints after them); like Applio's, the training
steps *return* "... failed ..." messages instead of raising, and conversion raises (the UI's ``enforce_terms``
wrapper turns that into ``(message, None)``).

Conversion is the same real transform as the rvc-python stand-in's (:mod:`.standin_dsp`); training writes a small
placeholder ``.pth``/``.index`` after ``--step-delay`` seconds per epoch, and ``stop_train`` ends it early as
Applio's kills its training process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ..scratch import exit_on_sigterm, scratch_root
from . import standin_dsp
from .standin_applio_ui import blocks

#: ``sup_audioext`` of Applio's inference and training tabs.
AUDIO_EXTENSIONS = ("wav", "mp3", "flac", "ogg", "opus", "m4a", "mp4", "aac", "alac", "wma", "aiff", "webm", "ac3")


def format_title(title: str) -> str:
    """Applio's ``rvc.lib.utils.format_title``: the file and dataset names it stores uploads under."""
    title = unicodedata.normalize("NFC", title)
    title = re.sub(r"[\u2500-\u257F]+", "", title)
    title = re.sub(r"[^\w\s.-]", "", title, flags=re.UNICODE)
    return re.sub(r"\s+", "_", title)


def output_path_fn(input_audio_path: str) -> str:
    """Applio's default output path for an input: ``<dir>/<stem>_output.wav``."""
    stem = os.path.basename(input_audio_path).rsplit(".", 1)[0]
    return os.path.join(os.path.dirname(input_audio_path), stem + "_output.wav")


class Applio:
    """The app's folder (``logs/``, ``assets/audios``, ``assets/datasets``) and the functions its tabs call."""

    output_path_fn = staticmethod(output_path_fn)

    def __init__(self, root: Path, *, step_delay: float = 0.05) -> None:
        self.root = root.resolve()
        self.logs = self.root / "logs"
        self.audios = self.root / "assets" / "audios"
        self.datasets = self.root / "assets" / "datasets"
        for folder in (self.logs, self.audios, self.datasets):
            folder.mkdir(parents=True, exist_ok=True)
        self.step_delay = step_delay
        self._stop: dict[str, threading.Event] = {}  # model name -> its training's "process killed"

    def add_voice(self, name: str) -> None:
        folder = self.logs / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.pth").write_bytes(b"standin-rvc-model:" + name.encode())
        (folder / f"added_IVF1_Flat_nprobe_1_{name}_v2.index").write_bytes(b"standin-rvc-index")

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def inside(self, value: str) -> Path:
        """A path the app was given, resolved against its folder (Applio's working directory)."""
        return (self.root / value).resolve()

    # --- inference tab (tabs/inference/inference.py) ----------------------------------------------------------------
    def get_files(self, kind: str) -> list[str]:
        if kind == "model":
            found = (p for p in self.logs.rglob("*") if p.suffix in (".pth", ".onnx"))
            return [self.rel(p) for p in found if not p.name.startswith(("G_", "D_"))]
        return [self.rel(p) for p in self.logs.rglob("*.index") if "trained" not in p.name]

    def audio_paths(self) -> list[str]:
        return sorted(
            self.rel(p)
            for p in self.audios.iterdir()
            if p.is_file() and p.name.endswith(AUDIO_EXTENSIONS) and "_output" not in p.name
        )

    def match_index(self, model: str | None) -> str:
        if not model:
            return ""
        folder = os.path.dirname(model)
        return next((i for i in sorted(self.get_files("index")) if os.path.dirname(i) == folder), "")

    def change_choices(self, model: str | None) -> tuple[dict[str, object], ...]:
        speakers: dict[str, object] = {"choices": [0], "__type__": "update"}
        return (
            {"choices": sorted(self.get_files("model")), "__type__": "update"},
            {"choices": sorted(self.get_files("index")), "__type__": "update"},
            {"choices": self.audio_paths(), "__type__": "update"},
            speakers,
            dict(speakers),
        )

    def save_to_wav2(self, upload_audio: str) -> tuple[str, str]:
        """The "Upload Audio" handler: the upload copied into ``assets/audios``; returns the "Select Audio" value and
        the output path that goes with it."""
        target = os.path.join(self.rel(self.audios), format_title(os.path.basename(upload_audio)))
        if os.path.exists(target):
            os.remove(target)
        shutil.copy(upload_audio, target)
        return target, output_path_fn(target)

    def run_infer_script(
        self,
        pitch: int,
        index_rate: float,
        volume_envelope: float,
        protect: float,
        f0_method: str,
        input_path: str,
        output_path: str,
        pth_path: str,
        index_path: str,
        split_audio: bool,
        f0_autotune: bool,
        f0_autotune_strength: float,
        proposed_pitch: bool,
        proposed_pitch_threshold: float,
        clean_audio: bool,
        clean_strength: float,
        export_format: str,
        embedder_model: str,
        embedder_model_custom: str | None = None,
        *effects: object,
    ) -> tuple[str, str]:
        """``core.run_infer_script``: raises when conversion fails; without a model it silently converts nothing
        and still answers with the output path (Applio's ``convert_audio`` returns early)."""
        sid = effects[-1] if len(effects) == 40 else 0
        answer = output_path.replace(".wav", f".{export_format.lower()}")
        if not pth_path:
            return f"File {input_path} inferred successfully.", answer
        model = self.inside(pth_path)
        if not model.is_file() or model.suffix != ".pth":
            raise FileNotFoundError(f"no voice model at {pth_path}")
        source = self.inside(input_path)
        if not source.is_file():
            raise FileNotFoundError(f"no audio at {input_path}")
        if embedder_model == "custom" and not embedder_model_custom:
            raise ValueError("a custom embedder needs its folder")
        converted = standin_dsp.convert(
            source.read_bytes(),
            model.stem + (f"#{sid}" if sid else ""),
            pitch=float(pitch),
            index_rate=float(index_rate) if index_path and self.inside(index_path).is_file() else 0.0,
            rms_mix_rate=float(volume_envelope),
        )
        target = self.inside(answer)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(converted)  # the stand-in writes WAV data whatever the export format says
        return f"File {input_path} inferred successfully.", answer

    # --- training tab (tabs/train/train.py, core.py) ----------------------------------------------------------------
    def save_drop_dataset_audio(self, dropbox: str, dataset_name: str) -> tuple[None, str | None]:
        if not dataset_name:
            return None, None
        if os.path.splitext(dropbox)[1][1:].lower() not in AUDIO_EXTENSIONS:
            return None, None
        folder = self.datasets / format_title(dataset_name)
        folder.mkdir(parents=True, exist_ok=True)
        destination = folder / format_title(os.path.basename(dropbox))
        destination.unlink(missing_ok=True)
        shutil.copy(dropbox, destination)
        return None, self.rel(folder)

    def run_preprocess_script(
        self,
        model_name: str,
        dataset_path: str,
        sample_rate: int,
        cpu_cores: int,
        cut_preprocess: str,
        process_effects: bool,
        noise_reduction: bool,
        clean_strength: float,
        chunk_len: float,
        overlap_len: float,
        normalization_mode: str = "none",
    ) -> str:
        dataset = self.inside(dataset_path or "")
        files = [p for p in dataset.glob("*") if p.name.endswith(AUDIO_EXTENSIONS)] if dataset.is_dir() else []
        folder = self._model_dir(model_name)
        if folder is None or not files:
            return f"Preprocessing failed for model {model_name}. Please check the console logs for more details."
        sliced = folder / "sliced_audios"
        sliced.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(sorted(files)):
            shutil.copy(f, sliced / f"0_{i}.wav")
        (folder / "model_info.json").write_text(json.dumps({"sample_rate": int(sample_rate)}))
        time.sleep(self.step_delay)
        return f"Model {model_name} preprocessed successfully."

    def run_extract_script(
        self,
        model_name: str,
        f0_method: str,
        cpu_cores: int,
        gpu: int,
        sample_rate: int,
        embedder_model: str,
        embedder_model_custom: str | None = None,
        include_mutes: int = 2,
    ) -> str:
        folder = self._model_dir(model_name)
        if folder is None or not (folder / "sliced_audios").is_dir():
            return f"Feature extraction failed for model {model_name}. Please check the console logs for more details."
        time.sleep(self.step_delay)
        (folder / "extracted").mkdir(exist_ok=True)
        return f"Model {model_name} extracted successfully."

    def run_train_script(
        self,
        model_name: str,
        save_every_epoch: int,
        save_only_latest: bool,
        save_every_weights: bool,
        total_epoch: int,
        sample_rate: int,
        batch_size: int,
        gpu: int,
        pretrained: bool,
        cleanup: bool,
        index_algorithm: str = "Auto",
        cache_data_in_gpu: bool = False,
        custom_pretrained: bool = False,
        g_pretrained_path: str | None = None,
        d_pretrained_path: str | None = None,
        vocoder: str = "HiFi-GAN",
        checkpointing: bool = False,
        shutdown_check: bool = False,
    ) -> str:
        """Applio trains in a subprocess whose id it writes to ``logs/<model>/config.json``; ``stop_train`` kills
        it, and then this answers "Training failed". The index is generated at the end, as Applio's does."""
        failed = f"Training failed for model {model_name}. Please check the console logs for more details."
        folder = self._model_dir(model_name)
        if folder is None or not (folder / "extracted").is_dir():
            return failed
        if pretrained and custom_pretrained and (g_pretrained_path is None or d_pretrained_path is None):
            raise ValueError("Please provide the path to the pretrained G and D models.")
        stop = self._stop[model_name] = threading.Event()
        (folder / "config.json").write_text(json.dumps({"process_pids": [os.getpid()]}))
        print(f"training {model_name}: {int(total_epoch)} epochs", flush=True)
        for _epoch in range(int(total_epoch)):
            if stop.wait(self.step_delay):
                print(f"training {model_name}: stopped", flush=True)
                return failed
        (folder / f"{model_name}.pth").write_bytes(b"standin-rvc-model:" + model_name.encode())
        self.run_index_script(model_name, index_algorithm)
        print(f"training {model_name}: done", flush=True)
        return f"Model {model_name} trained successfully."

    def run_index_script(self, model_name: str, index_algorithm: str) -> str:
        folder = self._model_dir(model_name)
        if folder is None or not (folder / f"{model_name}.pth").is_file():
            return (
                f"Index generation failed for model {model_name}. Make sure you have enough GPU available to "
                "generate the Index file. Please check the console logs for more details."
            )
        (folder / f"added_IVF1_Flat_nprobe_1_{model_name}_v2.index").write_bytes(b"standin-rvc-index")
        return f"Index file for {model_name} generated successfully."

    def stop_train(self, model_name: str) -> None:
        """``tabs/settings/sections/restart.stop_train``: kill the processes listed in the model's config.json."""
        if not model_name:
            return
        config = self.logs / model_name / "config.json"
        try:
            data = json.loads(config.read_text())
            data.pop("process_pids", None)
            config.write_text(json.dumps(data))
        except (OSError, ValueError):
            return
        stop = self._stop.get(model_name)
        if stop is not None:
            stop.set()

    def _model_dir(self, model_name: str) -> Path | None:
        if not model_name or "/" in model_name or "\\" in model_name or model_name.startswith("."):
            return None
        return self.logs / model_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in for Applio 3.6's Gradio app")
    parser.add_argument("--port", type=int, default=7865)
    parser.add_argument("--root", default="", help="the app's folder (default: a temporary one)")
    parser.add_argument("--voices", default="alice,bob", help="voices to create under <root>/logs")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per training epoch")
    args = parser.parse_args(argv)
    exit_on_sigterm()  # stopped with terminate(): a temporary root goes too
    root = Path(args.root) if args.root else scratch_root("applio-standin-")
    app = Applio(root, step_delay=args.step_delay)
    for voice in (v.strip() for v in args.voices.split(",")):
        if voice:
            app.add_voice(voice)
    os.chdir(app.root)  # Applio resolves its relative paths (logs/..., assets/...) against its own folder
    demo = blocks(app)
    demo.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1",
        server_port=args.port,
        prevent_thread_lock=True,
        allowed_paths=[str(app.root)],
        show_error=True,
        quiet=True,
    )
    print(f"http://127.0.0.1:{args.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
