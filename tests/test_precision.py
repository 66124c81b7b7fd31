"""Mixed precision with loss scaling, sample_weight, steps_per_execution and the seam's two routes, on the
suite's backend: what a GPU run depends on, checked on the CPU."""

import json

import keras
import numpy as np
import pytest
from conftest import make_images, to_numpy
from test_train_cli import FAST, idx_dir, invoke  # noqa: F401 (idx_dir: a fixture)
from typer.testing import CliRunner

import keras_vae
from cli.main import app
from keras_vae.backends import forced_route
from keras_vae.runs import Run
from keras_vae.training import dtype_policy

BACKEND = keras.backend.backend()
POLICIES = ["mixed_bfloat16", "mixed_float16"]


def trained(policy: str, optimizer, epochs: int, arch: str = "conv") -> tuple[keras.Model, list[float]]:
    """A VAE built under policy from seed 0 and trained on the 32 bar images in batches of 8, unshuffled."""
    keras.utils.set_random_seed(0)
    with dtype_policy(policy):
        model = keras_vae.build_model("vae", arch, 2, (8, 8, 1), seed=0)
        model.compile(optimizer=optimizer)
    history = (
        model.fit(make_images(), batch_size=8, epochs=epochs, shuffle=False, verbose=0).history
        if epochs
        else {}
    )
    return model, history.get("loss", [])


@pytest.mark.parametrize("policy", POLICIES)
def test_mixed_precision_trains_with_sgd_to_the_float32_loss(policy):
    """Loss terms in float32 (TensorFlow failed on bfloat16 times float32 here) and, under mixed_float16, a
    LossScaleOptimizer whose scaled gradients the steps must scale: 8 epochs of SGD end within 1% of float32
    (41.77 against 41.73 nats on TensorFlow), 6% below the untrained model's 44.4."""
    untrained, _ = trained(policy, keras.optimizers.SGD(0.05), 0)
    start = untrained.evaluate(make_images(), batch_size=8, verbose=0)[0]
    model, losses = trained(policy, keras.optimizers.SGD(0.05), 8)
    _, reference = trained("float32", keras.optimizers.SGD(0.05), 8)
    assert model.dtype_policy.name == policy and model.encoder.get_layer("z_mean").compute_dtype == "float32"
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert losses[-1] < 0.96 * start, "it learns"
    np.testing.assert_allclose(losses[-1], reference[-1], rtol=0.01)


@pytest.mark.parametrize("policy", POLICIES)
def test_one_step_moves_the_weights_as_float32_does(policy):
    """One SGD step of learning rate 1 moves each weight by minus its gradient: unscaled, within 16-bit
    rounding of float32's. A step that did not scale its loss moves them 2^4 times too little under
    mixed_float16 (94% off)."""
    optimizer = keras.optimizers.SGD(1.0)
    if (
        policy == "mixed_float16"
    ):  # a small scale, so no gradient overflows float16 and the step is not skipped
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**4)
    x = make_images()[:8]
    moved = {}
    for name, chosen in (("float32", keras.optimizers.SGD(1.0)), (policy, optimizer)):
        model, _ = trained(name, chosen, 0, arch="dense")
        before = [to_numpy(w) for w in model.trainable_weights]
        model.train_on_batch(x)
        moved[name] = [to_numpy(w) - b for w, b in zip(model.trainable_weights, before)]
    low, full = (np.concatenate([step.ravel() for step in moved[name]]) for name in (policy, "float32"))
    # bfloat16 keeps 8 bits of mantissa, float16 11: measured at most 3.5% and 0.5% apart (torch)
    assert np.linalg.norm(low - full) <= {"mixed_bfloat16": 0.06, "mixed_float16": 0.02}[
        policy
    ] * np.linalg.norm(full)


def test_sample_weight_is_refused_in_one_line():
    model, _ = trained("float32", keras.optimizers.SGD(0.01), 0, arch="dense")
    with pytest.raises(ValueError, match="keras_vae models take no sample_weight"):
        model.fit(make_images(), make_images(), sample_weight=np.ones(32), batch_size=8, epochs=1, verbose=0)


def seam_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model("ae", "conv", 2, (8, 8, 1), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


def test_the_accelerator_route_matches_the_cpu_kernels_forward_gradients_and_training():
    """Keras's own convolutions, which the seam takes for tensors on a GPU, forced here on the CPU: the same
    outputs, one SGD step moving every weight alike, and three epochs with the same losses as the CPU
    kernels."""
    x = make_images()
    results = {}
    for route in ("cpu", "accelerator"):
        with forced_route(route):
            assert keras_vae.backends.route(keras.ops.convert_to_tensor(x)) == (
                route if BACKEND != "tensorflow" else "accelerator"
            )
            model = seam_model()
            output = to_numpy(model(x))
            before = [to_numpy(w) for w in model.trainable_weights]
            model.train_on_batch(x[:8])
            step = [to_numpy(w) - b for w, b in zip(model.trainable_weights, before)]
            losses = model.fit(x, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
        results[route] = output, step, losses
    (cpu_output, cpu_step, cpu_losses), (gpu_output, gpu_step, gpu_losses) = (
        results["cpu"],
        results["accelerator"],
    )
    np.testing.assert_allclose(gpu_output, cpu_output, atol=1e-5)
    for gpu, cpu in zip(gpu_step, cpu_step):
        np.testing.assert_allclose(gpu, cpu, atol=1e-5)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)


def test_forced_route_takes_only_its_two_routes():
    with pytest.raises(ValueError, match="route must be one of"):
        with forced_route("tpu"):
            pass


def test_a_mixed_precision_run_trains_explores_evaluates_and_exports(idx_dir, tmp_path):
    result = invoke(
        "--data-dir",
        idx_dir,
        "--dtype-policy",
        "mixed_bfloat16",
        "--epochs",
        1,
        "--name",
        "m",
        "--output-dir",
        tmp_path,
        *FAST,
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "m"
    assert json.loads((run / "config.json").read_text())["options"]["dtype_policy"] == "mixed_bfloat16"
    model = keras.saving.load_model(run / "model.keras")
    assert model.dtype_policy.name == "mixed_bfloat16" and to_numpy(model(make_images())).dtype == np.float32
    for command in (["explore", str(run)], ["evaluate", str(run), "--k", "5"], ["animate", str(run)]):
        done = CliRunner().invoke(app, command)
        assert done.exit_code == 0, (command, done.output)
    assert Run(run).read_options().dtype_policy == "mixed_bfloat16", "what --resume trains with"
    if BACKEND == "tensorflow":  # export runs on TensorFlow (test_export runs it in its own process)
        for format in ("saved_model", "onnx"):
            done = CliRunner().invoke(app, ["export", str(run), "--format", format])
            assert done.exit_code == 0, (format, done.output)
        import tensorflow as tf

        reconstruct = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
        assert reconstruct.structured_input_signature[1]["images"].dtype == tf.float32


def test_steps_per_execution(idx_dir, tmp_path):
    result = invoke(
        "--data-dir",
        idx_dir,
        "--steps-per-execution",
        2,
        "--epochs",
        1,
        "--name",
        "s",
        "--output-dir",
        tmp_path,
        *FAST,
    )
    if BACKEND == "torch":
        assert (
            result.exit_code == 2 and "--steps-per-execution must be 1 on the torch backend" in result.stderr
        )
        assert not (tmp_path / "s").exists()
        return
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s" / "config.json").read_text())["options"]["steps_per_execution"] == 2
