"""A stand-in for Applio (RVC in a Gradio 6 app): the same auto-named endpoints and argument lists, a real Gradio
queue, files in and out, ``gr.Progress`` while training, ``gr.Error`` for failures.

Plain Python: this module never imports bpy (it needs gradio and numpy). Run it:
``python -m movie_director.clients.rvc.standin_applio --port 7865 [--root DIR] [--voices alice,bob]``; it prints its
URL once it serves.

Like Applio, voices are ``.pth`` files under ``<root>/logs/<name>/`` (an ``.index`` beside them), and no function has
an ``api_name``, so Gradio names each endpoint after its function:

- ``/change_choices(model)`` -> updates whose ``choices`` list the ``.pth`` and ``.index`` files (the Refresh button)
- ``/run_infer_script(pitch, filter_radius, index_rate, rms_mix_rate, protect, f0_method, input_path, output_path,
  pth_path, index_path, export_format, sid)`` -> (message, converted audio)
- ``/save_drop_dataset_audio(dropbox, dataset_name)`` -> (None, dataset folder): one uploaded recording into a dataset
- ``/run_preprocess_script(model_name, dataset_path, sample_rate, cpu_cores)``
- ``/run_extract_script(model_name, f0_method, hop_length, cpu_cores, gpu, sample_rate, embedder_model)``
- ``/run_train_script(model_name, save_every_epoch, total_epoch, sample_rate, batch_size, gpu, pretrained,
  index_algorithm)`` with a ``gr.Progress`` bar per epoch
- ``/run_index_script(model_name, index_algorithm)``

Conversion is the same real transform as the rvc-python stand-in's (:mod:`.standin_dsp`); training writes a small
placeholder ``.pth``/``.index`` after the steps a real run takes, ``--step-delay`` seconds per epoch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr

from ..scratch import exit_on_sigterm, scratch_root
from . import standin_dsp

SAMPLE_RATES = ["32000", "40000", "48000"]
F0_METHODS = ["rmvpe", "crepe", "crepe-tiny", "fcpe"]
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


class Applio:
    """The app's state: a root folder with ``logs/`` (voices) and ``assets/`` (audios, datasets)."""

    def __init__(self, root: Path, *, step_delay: float = 0.05) -> None:
        self.root = root.resolve()
        self.logs = self.root / "logs"
        self.audios = self.root / "assets" / "audios"
        self.datasets = self.root / "assets" / "datasets"
        for folder in (self.logs, self.audios, self.datasets):
            folder.mkdir(parents=True, exist_ok=True)
        self.step_delay = step_delay

    def add_voice(self, name: str) -> None:
        folder = self.logs / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.pth").write_bytes(b"standin-rvc-model:" + name.encode())
        (folder / f"added_IVF1_Flat_nprobe_1_{name}_v2.index").write_bytes(b"standin-rvc-index")

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def model_files(self) -> list[str]:
        return sorted(self.rel(p) for p in self.logs.rglob("*.pth") if not p.name.startswith(("G_", "D_")))

    def index_files(self) -> list[str]:
        return sorted(self.rel(p) for p in self.logs.rglob("*.index") if "trained" not in p.name)

    def inside(self, value: str, what: str) -> Path:
        """A path the app was given, resolved against its root; never outside it."""
        path = (self.root / value).resolve()
        if not path.is_relative_to(self.root):
            raise gr.Error(f"{what} must be inside the Applio folder")
        return path

    # --- inference ------------------------------------------------------------------------------------------------
    def change_choices(self, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            {"choices": self.model_files(), "__type__": "update"},
            {"choices": self.index_files(), "__type__": "update"},
        )

    def run_infer_script(
        self,
        pitch: int,
        filter_radius: int,
        index_rate: float,
        rms_mix_rate: float,
        protect: float,
        f0_method: str,
        input_path: str,
        output_path: str,
        pth_path: str,
        index_path: str,
        export_format: str,
        sid: int,
    ) -> tuple[str, str]:
        if not input_path:
            raise gr.Error("Please upload an audio file first.")
        model = self.inside(pth_path or "", "The voice model")
        if not pth_path or not model.is_file():
            raise gr.Error(f"The voice model {pth_path!r} does not exist.")
        if index_path and not self.inside(index_path, "The index file").is_file():
            raise gr.Error(f"The index file {index_path!r} does not exist.")
        if f0_method not in F0_METHODS:
            raise gr.Error(f"Unknown pitch extraction method {f0_method!r}.")
        target = self.inside(output_path or self.rel(self.audios / "output.wav"), "The output path")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            out = standin_dsp.convert(
                Path(input_path).read_bytes(),
                model.stem,
                pitch=float(pitch),
                index_rate=float(index_rate) if index_path else 0.0,
                rms_mix_rate=float(rms_mix_rate),
            )
        except ValueError as exc:
            raise gr.Error(f"Could not read the audio: {exc}") from None
        target = target.with_suffix(".wav")
        target.write_bytes(out)
        return f"File {Path(input_path).name} inferred successfully.", str(target)

    # --- training -------------------------------------------------------------------------------------------------
    def save_drop_dataset_audio(self, dropbox: str, dataset_name: str) -> tuple[None, str]:
        if not dataset_name or "/" in dataset_name or dataset_name.startswith("."):
            raise gr.Error("Please enter a valid dataset name.")
        if not dropbox or Path(dropbox).suffix.lower() not in AUDIO_SUFFIXES:
            raise gr.Error("The file you dropped is not a valid audio file.")
        folder = self.datasets / dataset_name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(dropbox, folder / Path(dropbox).name)
        return None, self.rel(folder)

    def run_preprocess_script(
        self,
        model_name: str,
        dataset_path: str,
        sample_rate: str,
        cpu_cores: int,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio finds its progress bar by this default
    ) -> str:
        dataset = self.inside(dataset_path or "", "The dataset path")
        files = sorted(p for p in dataset.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if dataset.is_dir() else []
        if not files:
            raise gr.Error(f"The dataset {dataset_path!r} holds no audio files.")
        sliced = self._model_dir(model_name) / "sliced_audios"
        sliced.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(progress.tqdm(files, desc="preprocess")):
            shutil.copy(f, sliced / f"0_{i}.wav")
            time.sleep(self.step_delay)
        (self._model_dir(model_name) / "model_info.json").write_text(f'{{"sample_rate": {int(sample_rate)}}}')
        return f"Model {model_name} preprocessed successfully."

    def run_extract_script(
        self,
        model_name: str,
        f0_method: str,
        hop_length: int,
        cpu_cores: int,
        gpu: str,
        sample_rate: str,
        embedder_model: str,
    ) -> str:
        folder = self._model_dir(model_name)
        if not (folder / "sliced_audios").is_dir():
            raise gr.Error(f"Preprocess the dataset of {model_name} first.")
        time.sleep(self.step_delay)
        (folder / "extracted").mkdir(exist_ok=True)
        return f"Model {model_name} extracted successfully."

    def run_train_script(
        self,
        model_name: str,
        save_every_epoch: int,
        total_epoch: int,
        sample_rate: str,
        batch_size: int,
        gpu: str,
        pretrained: bool,
        index_algorithm: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio finds its progress bar by this default
    ) -> str:
        folder = self._model_dir(model_name)
        if not (folder / "extracted").is_dir():
            raise gr.Error(f"Extract the features of {model_name} first.")
        epochs = int(total_epoch)
        for epoch in range(1, epochs + 1):
            progress((epoch - 1, epochs), desc="train", unit="epochs")
            time.sleep(self.step_delay)
        progress((epochs, epochs), desc="train", unit="epochs")
        (folder / f"{model_name}.pth").write_bytes(b"standin-rvc-model:" + model_name.encode())
        return f"Model {model_name} trained successfully."

    def run_index_script(self, model_name: str, index_algorithm: str) -> str:
        folder = self._model_dir(model_name)
        if not (folder / f"{model_name}.pth").is_file():
            raise gr.Error(f"Train {model_name} first.")
        (folder / f"added_IVF1_Flat_nprobe_1_{model_name}_v2.index").write_bytes(b"standin-rvc-index")
        return f"Index file for {model_name} generated successfully."

    def _model_dir(self, model_name: str) -> Path:
        if not model_name or "/" in model_name or model_name.startswith("."):
            raise gr.Error("Please enter a valid model name.")
        return self.logs / model_name

    # --- the UI -----------------------------------------------------------------------------------------------------
    def blocks(self) -> gr.Blocks:
        names = self.model_files()
        with gr.Blocks(title="Applio (stand-in)") as demo:
            with gr.Tab("Inference"):
                model_file = gr.Dropdown(
                    label="Voice Model", choices=names, value=names[0] if names else None, allow_custom_value=True
                )
                index_file = gr.Dropdown(label="Index File", choices=self.index_files(), allow_custom_value=True)
                refresh = gr.Button("Refresh")
                upload_audio = gr.Audio(label="Upload Audio", type="filepath")
                output_path = gr.Textbox(label="Output Path", value=self.rel(self.audios / "output.wav"))
                export_format = gr.Radio(label="Export Format", choices=["WAV"], value="WAV")
                sid = gr.Dropdown(label="Speaker ID", choices=[0], value=0)
                pitch = gr.Slider(-24, 24, 0, step=1, label="Pitch")
                filter_radius = gr.Slider(0, 7, 3, step=1, label="Filter Radius")
                index_rate = gr.Slider(0, 1, 0.3, label="Search Feature Ratio")
                rms_mix_rate = gr.Slider(0, 1, 1, label="Volume Envelope")
                protect = gr.Slider(0, 0.5, 0.33, label="Protect Voiceless Consonants")
                f0_method = gr.Radio(label="Pitch extraction algorithm", choices=F0_METHODS, value="rmvpe")
                convert = gr.Button("Convert")
                info = gr.Textbox(label="Output Information")
                converted = gr.Audio(label="Export Audio", type="filepath")
                refresh.click(self.change_choices, [model_file], [model_file, index_file])
                convert.click(
                    self.run_infer_script,
                    [
                        pitch,
                        filter_radius,
                        index_rate,
                        rms_mix_rate,
                        protect,
                        f0_method,
                        upload_audio,
                        output_path,
                        model_file,
                        index_file,
                        export_format,
                        sid,
                    ],
                    [info, converted],
                )
            with gr.Tab("Train"):
                model_name = gr.Textbox(label="Model Name")
                dataset_name = gr.Textbox(label="Dataset Name")
                dataset_path = gr.Textbox(label="Dataset Path")
                upload_dataset = gr.File(label="Upload Audio Dataset", type="filepath")
                sampling_rate = gr.Radio(label="Sampling Rate", choices=SAMPLE_RATES, value="40000")
                cpu_cores = gr.Slider(1, 64, 2, step=1, label="CPU Cores")
                hop_length = gr.Slider(1, 512, 128, step=1, label="Hop Length")
                extract_f0 = gr.Radio(label="Pitch extraction algorithm", choices=F0_METHODS, value="rmvpe")
                gpu = gr.Textbox(label="GPU Number", value="0")
                embedder = gr.Radio(label="Embedder Model", choices=["contentvec"], value="contentvec")
                save_every = gr.Slider(1, 100, 10, step=1, label="Save Every Epoch")
                total_epoch = gr.Slider(1, 10000, 500, step=1, label="Total Epoch")
                batch_size = gr.Slider(1, 64, 8, step=1, label="Batch Size")
                pretrained = gr.Checkbox(label="Pretrained", value=True)
                index_algorithm = gr.Radio(label="Index Algorithm", choices=["Auto", "Faiss", "KMeans"], value="Auto")
                out = gr.Textbox(label="Output Information")
                upload_dataset.upload(
                    self.save_drop_dataset_audio, [upload_dataset, dataset_name], [upload_dataset, dataset_path]
                )
                gr.Button("Preprocess Dataset").click(
                    self.run_preprocess_script, [model_name, dataset_path, sampling_rate, cpu_cores], out
                )
                gr.Button("Extract Features").click(
                    self.run_extract_script,
                    [model_name, extract_f0, hop_length, cpu_cores, gpu, sampling_rate, embedder],
                    out,
                )
                gr.Button("Start Training").click(
                    self.run_train_script,
                    [model_name, save_every, total_epoch, sampling_rate, batch_size, gpu, pretrained, index_algorithm],
                    out,
                )
                gr.Button("Generate Index").click(self.run_index_script, [model_name, index_algorithm], out)
        return demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in for Applio's Gradio app")
    parser.add_argument("--port", type=int, default=7865)
    parser.add_argument("--root", default="", help="the app's folder (default: a temporary one)")
    parser.add_argument("--voices", default="alice,bob", help="voices to create under <root>/logs")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per training step")
    args = parser.parse_args(argv)
    exit_on_sigterm()  # stopped with terminate(): a temporary root goes too
    root = Path(args.root) if args.root else scratch_root("applio-standin-")
    app = Applio(root, step_delay=args.step_delay)
    for voice in (v.strip() for v in args.voices.split(",")):
        if voice:
            app.add_voice(voice)
    os.chdir(app.root)  # Applio resolves its relative paths (logs/..., assets/...) against its own folder
    demo = app.blocks()
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
