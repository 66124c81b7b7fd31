"""`keras-vae export`: a trained run as a TensorFlow SavedModel, ONNX files or a .keras copy.

Every format serves three deterministic endpoints: encode (images -> z_mean and z_log_var for the
variational families, z for an AE, code indices for a VQ-VAE), decode (those codes -> images) and
reconstruct (images -> images through the mean); a CVAE's take the one-hot labels as a second input,
`labels`. The SavedModel adds serving_default = reconstruct. The .keras file loads under TensorFlow whichever
backend trained it, so exporting runs on TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from keras_vae import __version__
from keras_vae.choices import EXPORT_FORMATS
from keras_vae.errors import ConfigError
from keras_vae.files import claim, make_folder, sync, temporary_path, write_error, write_json_atomic
from keras_vae.models.coding import conditioned
from keras_vae.runs import Run, RunError, check_not_owned
from keras_vae.snapshots import read_fixed

SUFFIXES = {"keras": ".keras"}
"""The file name ending a format's file needs (the others are folders)."""
MARKER = "keras-vae-export.json"
"""Written into every export folder: --overwrite replaces only a folder that holds it."""
Endpoint = Callable[[list[np.ndarray]], list]


def serving_models(model) -> dict[str, keras.Model]:
    """Functional models for the endpoints: the encoder without its Sampling layer (a VQ-VAE's giving code
    indices), the decoder (of those codes), and both. A CVAE's take the one-hot labels as a second input."""
    if model.discrete:
        images = keras.Input(model.image_shape, name="images")
        reconstructed = model.code_decoder(model.means_encoder(images))
        return {
            "encode": model.means_encoder,
            "decode": model.code_decoder,
            "reconstruct": keras.Model(images, reconstructed, name="reconstruct"),
        }
    inputs, outputs = model.encoder.inputs, model.encoder.outputs
    codes = outputs[:2] if model.variational else outputs
    reconstructed = model.decoder([codes[0], *inputs[1:]] if model.conditional else codes[0])
    return {
        "encode": keras.Model(inputs, codes, name="encode"),
        "decode": model.decoder,
        "reconstruct": keras.Model(inputs, reconstructed, name="reconstruct"),
    }


def output_names(name: str, model: keras.Model) -> list[str]:
    if name != "encode":
        return ["images"]
    if model.outputs[0].dtype.startswith("int"):
        return ["codes"]
    return ["z_mean", "z_log_var"] if len(model.outputs) == 2 else ["z"]


def input_names(model: keras.Model) -> list[str]:
    return [tensor.name for tensor in model.inputs]


def write_saved_model(model, path: Path) -> None:
    import tensorflow as tf

    models = serving_models(model)
    archive = keras.export.ExportArchive()
    for model in models.values():
        archive.track(model)
    for name, model in {**models, "serving_default": models["reconstruct"]}.items():
        specs = [
            tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=tensor.name)
            for tensor in model.inputs
        ]
        archive.add_endpoint(name, named_outputs(model, output_names(name, model)), specs)
    archive.write_out(str(path), verbose=False)


def named_outputs(model: keras.Model, names: list[str]):
    """model as a function of its inputs returning {name: output}, the form SavedModel signatures take."""
    return lambda *inputs: dict(
        zip(names, keras.tree.flatten(model(list(inputs) if len(inputs) > 1 else inputs[0])))
    )


def write_onnx(model, folder: Path) -> None:
    folder.mkdir()
    for name, model in serving_models(model).items():
        specs = [
            keras.InputSpec(shape=(None, *tensor.shape[1:]), dtype=tensor.dtype) for tensor in model.inputs
        ]
        model.export(
            str(folder / f"{name}.onnx"),
            format="onnx",
            input_signature=[specs if len(specs) > 1 else specs[0]],
            verbose=False,
        )


def saved_model_endpoints(path: Path, models: dict[str, keras.Model]) -> dict[str, Endpoint]:
    import tensorflow as tf

    signatures = tf.saved_model.load(str(path)).signatures

    def endpoint(name: str) -> Endpoint:
        keys, outputs = input_names(models[name]), output_names(name, models[name])
        return lambda inputs: [
            signatures[name](**{key: tf.constant(x) for key, x in zip(keys, inputs)})[n].numpy()
            for n in outputs
        ]

    return {name: endpoint(name) for name in models}


def onnx_endpoints(folder: Path, models: dict[str, keras.Model]) -> dict[str, Endpoint]:
    import onnxruntime

    def endpoint(name: str) -> Endpoint:
        session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"))
        return lambda inputs: session.run(
            None, {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
        )

    return {name: endpoint(name) for name in models}


def keras_endpoints(path: Path, models: dict[str, keras.Model]) -> dict[str, Endpoint]:
    reloaded = serving_models(keras.saving.load_model(path, compile=False))
    return {
        name: lambda inputs, m=m: keras.tree.flatten(
            m.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        )
        for name, m in reloaded.items()
    }


WRITERS = {
    "saved_model": write_saved_model,
    "onnx": write_onnx,
    "keras": lambda model, path: model.save(path),
}
READERS = {"saved_model": saved_model_endpoints, "onnx": onnx_endpoints, "keras": keras_endpoints}


def largest_difference(
    models: dict[str, keras.Model], endpoints: dict[str, Endpoint], images: list[np.ndarray]
) -> float:
    """The largest absolute difference between every exported endpoint and its Keras model on a batch (images,
    and a CVAE's one-hot labels)."""
    encoded = keras.tree.flatten(
        models["encode"].predict(images if len(images) > 1 else images[0], verbose=0)
    )[0]
    largest = 0.0
    for name, model in models.items():
        inputs = [encoded, *images[1:]] if name == "decode" else images
        expected = keras.tree.flatten(model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0))
        for got, want in zip(endpoints[name](inputs), expected, strict=True):
            largest = max(largest, float(np.max(np.abs(np.asarray(got) - np.asarray(want)))))
    return largest


def check_target(run: Run, out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse an --out that would destroy what keras-vae did not write: an existing target without
    --overwrite; with it, anything but a file (for .keras) or a folder holding the export marker; and never
    the run itself or a folder that holds it."""
    if run.root.resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"out is the run or holds it ({out}): give a path of its own", "out")
    check_not_owned(out)
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise RunError(f"{out} exists: pass --overwrite to replace it, or another --out")
    if fmt == "keras":
        claim(out, overwrite)
    elif not (out / MARKER).is_file():
        raise RunError(
            f"{out} is not an export keras-vae wrote (no {MARKER} in it), so --overwrite leaves it alone: "
            "give another --out"
        )


def in_float32(model: keras.Model) -> keras.Model:
    """The model rebuilt with every layer computing in float32 and its weights copied (a mixed precision run
    keeps its weights in float32): what SavedModel and ONNX serve, so runtimes without 16-bit kernels run
    it."""
    config = float32_policies(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def float32_policies(node):
    """A serialized Keras object with every dtype policy in it made float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy":
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [float32_policies(value) for value in node]
    return node


def write_export(model, fmt: str, folder: Path) -> None:
    """One format's files, and in a folder format the marker that lets --overwrite replace it later."""
    WRITERS[fmt](model, folder)
    if fmt != "keras":
        write_json_atomic(folder / MARKER, {"format": fmt, "keras_vae_version": __version__})


def export_run(
    path: str | Path,
    fmt: str = "saved_model",
    out: Path | None = None,
    overwrite: bool = False,
    check: bool = True,
):
    """Export a run; returns where it went and, unless check is False, the largest difference on a batch."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", "format")
    if fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        raise RunError("ONNX export needs tf2onnx and onnx: pip install 'keras-vae[onnx]'")
    run = Run(Path(path))
    out = out or run.target(run.export / ("model.keras" if fmt == "keras" else fmt))
    if out.suffix.lower() != SUFFIXES.get(fmt, out.suffix.lower()):
        raise ConfigError(
            f"out {out.name} does not end in {SUFFIXES[fmt]}, which --format {fmt} writes: name it so", "out"
        )
    check_target(run, out, fmt, overwrite)
    model = run.load_model()
    if fmt != "keras" and model.dtype_policy.name != "float32":
        model = in_float32(model)
    make_folder(out.parent)
    try:
        with temporary_path(out) as temporary, temporary_path(out, ".old") as replaced:
            write_export(model, fmt, temporary)
            for written in [temporary, *temporary.rglob("*")] if temporary.is_dir() else [temporary]:
                sync(written)
            if out.exists():
                os.replace(
                    out, replaced
                )  # a folder cannot be renamed onto another: move the old one aside first
            os.replace(temporary, out)
            sync(out.parent)
    except OSError as error:
        raise write_error(error, out) or error
    if not check or (fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None):
        return out, None
    fixed = read_fixed(run.snapshots)
    images = conditioned(model, fixed["images"][:8].astype("float32") / 255, fixed["labels"][:8])
    models = serving_models(model)
    return out, largest_difference(
        models, READERS[fmt](out, models), images if model.conditional else [images]
    )
