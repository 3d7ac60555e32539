"""The Applio stand-in's UI: Applio 3.6's Inference and Training tabs as its ``tabs/inference/inference.py`` and
``tabs/train/train.py`` wire them (labels, defaults, which inputs feed which function, in that order).

Plain Python: this module never imports bpy. What matters to a client is reproduced exactly; purely visual parts
(accordions, visibility toggles, presets, the batch tab's controls) are left out or reduced to the components an
endpoint reads. Gradio names the endpoints after the functions: ``/enforce_terms`` (inference), ``/save_to_wav2``
(the upload), ``/change_choices`` (Refresh), ``/run_preprocess_script``, ``/run_extract_script``,
``/enforce_terms_1`` (training), ``/run_index_script``, ``/stop_train``, ``/save_drop_dataset_audio``.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import gradio as gr

TERMS_LABEL = "I agree to the terms of use"
TERMS_MESSAGE = "You must agree to the Terms of Use to proceed."
INFER_F0 = ["crepe", "crepe-tiny", "rmvpe", "fcpe"]
TRAIN_F0 = ["crepe", "crepe-tiny", "rmvpe"]
EMBEDDERS = ["contentvec", "spin", "spin-v2", "chinese-hubert-base", "japanese-hubert-base", "korean-hubert-base",
             "custom"]  # fmt: skip
SWITCHES = ("Reverb", "Pitch Shift", "Limiter", "Gain", "Distortion", "Chorus", "Bitcrush", "Clipping", "Compressor",
            "Delay")  # fmt: skip
#: The post-process inputs of the inference click, in Applio's order: (label, kind, default, minimum, maximum).
EFFECTS: list[tuple[str, str, Any, float, float]] = [
    ("Formant Shifting", "check", False, 0, 0),
    ("Quefrency for formant shifting", "slider", 1.0, 0.0, 16.0),
    ("Timbre for formant shifting", "slider", 1.0, 0.0, 16.0),
    ("Post-Process", "check", False, 0, 0),
    *((name, "check", False, 0, 0) for name in SWITCHES),
    ("Reverb Room Size", "slider", 0.5, 0, 1),
    ("Reverb Damping", "slider", 0.5, 0, 1),
    ("Reverb Wet Gain", "slider", 0.33, 0, 1),
    ("Reverb Dry Gain", "slider", 0.4, 0, 1),
    ("Reverb Width", "slider", 1.0, 0, 1),
    ("Reverb Freeze Mode", "slider", 0, 0, 1),
    ("Pitch Shift Semitones", "slider", 0, -12, 12),
    ("Limiter Threshold dB", "slider", -6, -60, 0),
    ("Limiter Release Time", "slider", 0.05, 0.01, 1),
    ("Gain dB", "slider", 0, -60, 60),
    ("Distortion Gain", "slider", 25, 0, 100),
    ("Chorus Rate Hz", "slider", 1.0, 0, 100),
    ("Chorus Depth", "slider", 0.25, 0, 1),
    ("Chorus Center Delay ms", "slider", 7, 7, 8),
    ("Chorus Feedback", "slider", 0.0, 0, 1),
    ("Chorus Mix", "slider", 0.5, 0, 1),
    ("Bitcrush Bit Depth", "slider", 8, 1, 32),
    ("Clipping Threshold", "slider", -6, -60, 0),
    ("Compressor Threshold dB", "slider", 0, -60, 0),
    ("Compressor Ratio", "slider", 1, 1, 20),
    ("Compressor Attack ms", "slider", 1.0, 0.0, 100),
    ("Compressor Release ms", "slider", 100, 0.01, 100),
    ("Delay Seconds", "slider", 0.5, 0.0, 5.0),
    ("Delay Feedback", "slider", 0.0, 0.0, 1.0),
    ("Delay Mix", "slider", 0.5, 0.0, 1.0),
]


def _effect(label: str, kind: str, default: Any, minimum: float, maximum: float) -> Any:
    if kind == "check":
        return gr.Checkbox(label=label, value=default, interactive=True, visible=False)
    return gr.Slider(minimum=minimum, maximum=maximum, label=label, value=default, interactive=True, visible=False)


def inference_tab(app: Any) -> None:
    models = sorted(app.get_files("model"))
    default_weight = models[0] if models else None
    model_file = gr.Dropdown(label="Voice Model", choices=models, value=default_weight, allow_custom_value=True)
    index_file = gr.Dropdown(
        label="Index File", choices=sorted(app.get_files("index")), value=app.match_index(default_weight),
        allow_custom_value=True,
    )  # fmt: skip
    unload_button = gr.Button("Unload Voice")
    refresh_button = gr.Button("Refresh")
    unload_button.click(
        fn=lambda: ({"value": "", "__type__": "update"}, {"value": "", "__type__": "update"}),
        inputs=[],
        outputs=[model_file, index_file],
    )
    with gr.Tab("Single"):
        upload_audio = gr.Audio(label="Upload Audio", type="filepath", editable=False)
        audio_paths = app.audio_paths()
        audio = gr.Dropdown(
            label="Select Audio", choices=audio_paths, value=audio_paths[0] if audio_paths else "",
            allow_custom_value=True,
        )  # fmt: skip
        output_path = gr.Textbox(
            label="Output Path",
            value=app.output_path_fn(audio_paths[0])
            if audio_paths
            else os.path.join(app.root, "assets/audios/output.wav"),
        )
        export_format = gr.Radio(label="Export Format", choices=["WAV", "MP3", "FLAC", "OGG", "M4A"], value="WAV")
        sid = gr.Dropdown(label="Speaker ID", choices=[0], value=0)
        split_audio = gr.Checkbox(label="Split Audio", value=False)
        autotune = gr.Checkbox(label="Autotune", value=False)
        autotune_strength = gr.Slider(minimum=0, maximum=1, label="Autotune Strength", value=1, visible=False)
        proposed_pitch = gr.Checkbox(label="Proposed Pitch", value=False)
        proposed_pitch_threshold = gr.Slider(50.0, 1200.0, label="Proposed Pitch Threshold", value=155.0, visible=False)
        clean_audio = gr.Checkbox(label="Clean Audio", value=False)
        clean_strength = gr.Slider(minimum=0, maximum=1, label="Clean Strength", value=0.5, visible=False)
        effects = [_effect(*spec) for spec in EFFECTS]
        pitch = gr.Slider(minimum=-24, maximum=24, step=1, label="Pitch", value=0)
        index_rate = gr.Slider(minimum=0, maximum=1, label="Search Feature Ratio", value=0.75)
        rms_mix_rate = gr.Slider(minimum=0, maximum=1, label="Volume Envelope", value=1)
        protect = gr.Slider(minimum=0, maximum=0.5, label="Protect Voiceless Consonants", value=0.5)
        f0_method = gr.Radio(label="Pitch extraction algorithm", choices=INFER_F0, value="rmvpe")
        embedder_model = gr.Radio(label="Embedder Model", choices=EMBEDDERS, value="contentvec")
        embedder_model_custom = gr.Dropdown(
            label="Select Custom Embedder", choices=[], interactive=True, allow_custom_value=True
        )

        def enforce_terms(terms_accepted: bool, *args: Any) -> tuple[str, str | None]:
            if not terms_accepted:
                gr.Info(TERMS_MESSAGE)
                return TERMS_MESSAGE, None
            try:
                return app.run_infer_script(*args)
            except Exception:
                traceback.print_exc()
                return (
                    "An error occurred during audio conversion. Please check the console logs for more details.",
                    None,
                )

        terms_checkbox = gr.Checkbox(label=TERMS_LABEL, value=False, interactive=True)
        convert_button1 = gr.Button("Convert")
        vc_output1 = gr.Textbox(label="Output Information")
        vc_output2 = gr.Audio(label="Export Audio")
    with gr.Tab("Batch"):
        sid_batch = gr.Dropdown(label="Speaker ID", choices=[0], value=0)
    refresh_button.click(
        fn=app.change_choices, inputs=[model_file], outputs=[model_file, index_file, audio, sid, sid_batch]
    )
    audio.change(fn=app.output_path_fn, inputs=[audio], outputs=[output_path])
    upload_audio.upload(fn=app.save_to_wav2, inputs=[upload_audio], outputs=[audio, output_path])
    convert_button1.click(
        fn=enforce_terms,
        inputs=[terms_checkbox, pitch, index_rate, rms_mix_rate, protect, f0_method, audio, output_path, model_file,
                index_file, split_audio, autotune, autotune_strength, proposed_pitch, proposed_pitch_threshold,
                clean_audio, clean_strength, export_format, embedder_model, embedder_model_custom, *effects, sid],
        outputs=[vc_output1, vc_output2],
    )  # fmt: skip


def train_tab(app: Any) -> None:
    model_name = gr.Dropdown(
        label="Model Name", choices=sorted(p.name for p in app.logs.iterdir() if p.is_dir()), value="my-project",
        allow_custom_value=True,
    )  # fmt: skip
    sampling_rate = gr.Radio(label="Sampling Rate", choices=["32000", "40000", "48000"], value="40000")
    vocoder = gr.Radio(label="Vocoder", choices=["HiFi-GAN", "RefineGAN"], value="HiFi-GAN")
    cpu_cores = gr.Slider(1, 32, 2, step=1, label="CPU Cores")
    gpu = gr.Textbox(label="GPU Number", value="0")
    dataset_path = gr.Dropdown(label="Dataset Path", choices=[], allow_custom_value=True, interactive=True)
    dataset_name = gr.Textbox(label="Dataset Name")
    upload_audio_dataset = gr.File(label="Upload Audio Dataset", type="filepath", interactive=True)
    cut_preprocess = gr.Radio(label="Audio cutting", choices=["Skip", "Simple", "Automatic"], value="Automatic")
    chunk_len = gr.Slider(0.5, 5.0, 3.0, step=0.1, label="Chunk length (sec)")
    overlap_len = gr.Slider(0.0, 0.4, 0.3, step=0.1, label="Overlap length (sec)")
    process_effects = gr.Checkbox(label="Noise filter", value=False)
    normalization_mode = gr.Radio(label="Normalization mode", choices=["none", "pre", "post"], value="post")
    noise_reduction = gr.Checkbox(label="Noise Reduction", value=False)
    clean_strength = gr.Slider(minimum=0, maximum=1, label="Noise Reduction Strength", value=0.5, visible=False)
    preprocess_output_info = gr.Textbox(label="Output Information", value="")
    gr.Button("Preprocess Dataset").click(
        fn=app.run_preprocess_script,
        inputs=[model_name, dataset_path, sampling_rate, cpu_cores, cut_preprocess, process_effects, noise_reduction,
                clean_strength, chunk_len, overlap_len, normalization_mode],
        outputs=[preprocess_output_info],
    )  # fmt: skip
    f0_method = gr.Radio(label="Pitch extraction algorithm", choices=TRAIN_F0, value="rmvpe")
    embedder_model = gr.Radio(label="Embedder Model", choices=["contentvec", "spin-v2", "custom"], value="contentvec")
    include_mutes = gr.Slider(0, 10, 2, step=1, label="Silent training files")
    embedder_model_custom = gr.Dropdown(label="Select Custom Embedder", choices=[], allow_custom_value=True)
    extract_output_info = gr.Textbox(label="Output Information", value="")
    gr.Button("Extract Features").click(
        fn=app.run_extract_script,
        inputs=[model_name, f0_method, cpu_cores, gpu, sampling_rate, embedder_model, embedder_model_custom,
                include_mutes],
        outputs=[extract_output_info],
    )  # fmt: skip
    batch_size = gr.Slider(1, 50, 8, step=1, label="Batch Size")
    save_every_epoch = gr.Slider(1, 100, 10, step=1, label="Save Every Epoch")
    total_epoch = gr.Slider(1, 10000, 200, step=1, label="Total Epoch")
    save_only_latest = gr.Checkbox(label="Save Only Latest", value=True)
    save_every_weights = gr.Checkbox(label="Save Every Weights", value=True)
    pretrained = gr.Checkbox(label="Pretrained", value=True)
    cleanup = gr.Checkbox(label="Fresh Training", value=False)
    cache_dataset_in_gpu = gr.Checkbox(label="Cache Dataset in GPU", value=False)
    checkpointing = gr.Checkbox(label="Checkpointing", value=False)
    shutdown_check = gr.Checkbox(label="Shutdown after finishing", value=False)
    custom_pretrained = gr.Checkbox(label="Custom Pretrained", value=False)
    g_pretrained_path = gr.Dropdown(label="Custom Pretrained G", choices=[], allow_custom_value=True)
    d_pretrained_path = gr.Dropdown(label="Custom Pretrained D", choices=[], allow_custom_value=True)
    index_algorithm = gr.Radio(label="Index Algorithm", choices=["Auto", "Faiss", "KMeans"], value="Auto")

    def enforce_terms(terms_accepted: bool, *args: Any) -> str:
        if not terms_accepted:
            gr.Info(TERMS_MESSAGE)
            return TERMS_MESSAGE
        return app.run_train_script(*args)

    terms_checkbox = gr.Checkbox(label=TERMS_LABEL, value=False, interactive=True)
    train_output_info = gr.Textbox(label="Output Information", value="")
    train_button = gr.Button("Start Training")
    stop_train_button = gr.Button("Stop Training", visible=False)
    stop_train_button.click(fn=app.stop_train, inputs=[model_name], outputs=[])
    gr.Button("Generate Index").click(
        fn=app.run_index_script, inputs=[model_name, index_algorithm], outputs=[train_output_info]
    )
    upload_audio_dataset.upload(
        fn=app.save_drop_dataset_audio,
        inputs=[upload_audio_dataset, dataset_name],
        outputs=[upload_audio_dataset, dataset_path],
    )

    def enable_stop_train_button(terms_accepted: bool) -> tuple[Any, Any]:
        if not terms_accepted:
            return gr.update(visible=True), gr.update(visible=False)
        return gr.update(visible=False), gr.update(visible=True)

    train_button.click(
        fn=enable_stop_train_button, inputs=[terms_checkbox], outputs=[train_button, stop_train_button]
    ).then(
        fn=enforce_terms,
        inputs=[terms_checkbox, model_name, save_every_epoch, save_only_latest, save_every_weights, total_epoch,
                sampling_rate, batch_size, gpu, pretrained, cleanup, index_algorithm, cache_dataset_in_gpu,
                custom_pretrained, g_pretrained_path, d_pretrained_path, vocoder, checkpointing, shutdown_check],
        outputs=[train_output_info],
    )  # fmt: skip


def blocks(app: Any) -> gr.Blocks:
    """The UI of ``app`` (a :class:`.standin_applio.Applio`; not imported here, which imports this module)."""
    with gr.Blocks(title="Applio (stand-in)") as demo:
        gr.Markdown("# Applio")
        with gr.Tab("Inference"):
            inference_tab(app)
        with gr.Tab("Training"):
            train_tab(app)
    return demo
