"""The test suite's mutation score on the core modules: each mutant is one small wrong change to the package,
run against the tests that cover its module, on the backend KERAS_BACKEND names. A mutant is killed when those
tests fail; one that survives is either a gap in the tests or equivalent (it changes nothing observable),
which docs/testing.md says for each. A measurement to rerun by hand, not a CI step:

    KERAS_BACKEND=tensorflow python tools/mutation.py               # every mutant, a table on stdout
    KERAS_BACKEND=tensorflow python tools/mutation.py --only metrics  # one module's mutants
    KERAS_BACKEND=tensorflow python tools/mutation.py --only "best model"  # those whose description says so

Each mutant runs in a copy of keras_vae/, cli/ and tests/ (the checkout is never changed), which PYTHONPATH
puts ahead of the installed package, with pytest -x so a killed mutant stops at its first failing test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ["tests/test_training.py", "tests/test_losses.py"]
RUNS = ["tests/test_safety.py", "tests/test_reliability.py", "tests/test_train_cli.py"]
CALLBACKS = ["tests/test_training.py", *RUNS]
EVALUATE = ["tests/test_explore.py"]


@dataclass(frozen=True)
class Mutant:
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    what: str

    @property
    def module(self) -> str:
        return Path(self.path).stem


def mutant(path: str, original: str, mutated: str, tests: list[str], what: str) -> Mutant:
    return Mutant(f"keras_vae/{path}", original, mutated, tuple(tests), what)


MUTANTS = [
    # losses.py: the one definition of the objective
    mutant(
        "losses.py", "0.5 * (ops.square(z_mean)", "0.4 * (ops.square(z_mean)", TRAINING, "KL scaled by 0.8"
    ),
    mutant("losses.py", "ops.exp(z_log_var) - 1.0", "ops.exp(z_log_var) - 0.5", TRAINING, "KL constant off"),
    mutant(
        "losses.py",
        '"loss": reconstruction_weight * recon + beta * kl',
        '"loss": recon + beta * kl',
        TRAINING,
        "reconstruction weight ignored",
    ),
    mutant(
        "losses.py",
        '"loss": reconstruction_weight * recon + beta * kl',
        '"loss": reconstruction_weight * recon + kl',
        TRAINING,
        "beta ignored",
    ),
    mutant(
        "losses.py",
        'reduce = ops.sum if reduction == "sum" else ops.mean',
        "reduce = ops.sum",
        TRAINING,
        "reduction ignored",
    ),
    mutant(
        "losses.py",
        "ops.mean(ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1))",
        "ops.sum(ops.mean(kl_per_dimension(z_mean, z_log_var), axis=-1))",
        TRAINING,
        "KL averaged over dimensions, summed over the batch",
    ),
    mutant("losses.py", "1.0 - keras.config.epsilon())", "1.0)", TRAINING, "BCE clipped on one side only"),
    # trained/metrics.py: what evaluate reports
    mutant(
        "trained/metrics.py",
        "np.log(np.mean(np.exp(log_w - top), axis=1))",
        "np.log(np.sum(np.exp(log_w - top), axis=1))",
        EVALUATE,
        "IW-NLL off by log k",
    ),
    mutant(
        "trained/metrics.py",
        "np.mean(iw_nll) / (dims * math.log(2))",
        "np.mean(iw_nll) / dims",
        EVALUATE,
        "bits per dimension in nats",
    ),
    mutant(
        "trained/metrics.py",
        "log_normal(z, 0.0, 0.0) - log_normal",
        "log_normal(z, 0.0, 0.0) + log_normal",
        EVALUATE,
        "log q added instead of subtracted",
    ),
    mutant(
        "trained/metrics.py",
        "np.exp(0.5 * z_log_var[:, None])",
        "np.exp(z_log_var[:, None])",
        EVALUATE,
        "samples with the variance as the scale",
    ),
    mutant(
        "trained/metrics.py",
        "(x > threshold) == (x_hat > threshold)",
        "(x > threshold) == (x_hat >= threshold)",
        EVALUATE,
        "pixel accuracy at the threshold",
    ),
    mutant(
        "trained/metrics.py",
        "np.var(z_means, axis=0) > threshold",
        "np.var(z_means, axis=1) > threshold",
        EVALUATE,
        "active units over the wrong axis",
    ),
    mutant(
        "trained/metrics.py",
        "-0.5 * math.prod(image_shape) * math.log(math.pi)",
        "-0.5 * math.prod(image_shape) * math.log(2 * math.pi)",
        EVALUATE,
        "Gaussian constant of variance 1",
    ),
    # models.py
    mutant(
        "models/base.py",
        "z_mean + ops.exp(0.5 * z_log_var) * eps",
        "z_mean + ops.exp(z_log_var) * eps",
        ["tests/test_models.py", *TRAINING],
        "reparameterisation with the variance",
    ),
    mutant(
        "models/base.py",
        "min(1.0, (epoch + 1) / (warmup + 1))",
        "min(1.0, epoch / (warmup + 1))",
        TRAINING,
        "KL warm-up one epoch late",
    ),
    mutant(
        "models/base.py",
        "tracker.update_state(terms[tracker.name], sample_weight=batch_size)",
        "tracker.update_state(terms[tracker.name])",
        TRAINING,
        "epoch means unweighted by batch size",
    ),
    mutant(
        "models/base.py",
        "z_mean, _, _ = self.encoder(x, training=training)\n        return self.decoder(z_mean",
        "_, _, z = self.encoder(x, training=training)\n        return self.decoder(z",
        ["tests/test_models.py"],
        "call decodes a sample, not the mean",
    ),
    # callbacks.py: resume state, NaN stop, best model, history, signals
    mutant(
        "callbacks.py",
        "            model.load_weights(path)\n",
        "            pass\n",
        CALLBACKS,
        "resume restores nothing",
    ),
    mutant(
        "callbacks.py",
        "        if value < self.best:",
        "        if value <= self.best or True:",
        CALLBACKS,
        "best model saved every epoch",
    ),
    mutant(
        "callbacks.py",
        "        if not math.isfinite(value):",
        "        if math.isnan(value) and False:",
        CALLBACKS,
        "NaN never stops training",
    ),
    mutant(
        "callbacks.py",
        "        self.rows = [*self.rows, row]",
        "        self.rows = [*self.rows, row, row]",
        CALLBACKS,
        "an epoch logged twice",
    ),
    mutant(
        "callbacks.py",
        "            raise Interrupted(self.requested)",
        "            pass",
        CALLBACKS,
        "signals ignored",
    ),
    mutant(
        "callbacks.py",
        "        check_free_space(self.folder, 2 * state + (1 << 20)",
        "        check_free_space(self.folder, 0",
        ["tests/test_safety.py"],
        "no free-space check",
    ),
    # runs.py: the run folder
    mutant(
        "runs.py",
        "    if overwrite and os.path.lexists(run.root) and not (run.root.is_dir() and run.is_run()):",
        "    if False:",
        RUNS,
        "--overwrite replaces any folder",
    ),
    mutant(
        "runs.py",
        "        if error_type is not None and not self.committed:",
        "        if False:",
        RUNS,
        "a failed replacement keeps nothing of the old run",
    ),
    mutant(
        "runs.py",
        "    if run.aside.exists():\n        put_back(run)",
        "    if False:\n        put_back(run)",
        RUNS,
        "no recovery after a killed replacement",
    ),
    mutant(
        "runs.py", "    if len(name) > NAME_LENGTH:", "    if len(name) > 1000:", RUNS, "no bound on the name"
    ),
    mutant(
        "runs.py",
        '        if config.get("run_format") != RUN_FORMAT:',
        "        if False:",
        RUNS,
        "run format not checked",
    ),
    mutant(
        "runs.py",
        "            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "            pass",
        RUNS,
        "no lock",
    ),
    # training.py and snapshots.py
    mutant(
        "training.py",
        "    if kept != list(range(1, done + 1)):",
        "    if False:",
        RUNS,
        "a history with gaps resumes",
    ),
    mutant(
        "training.py",
        "    for name in sorted(set(changed) - set(CHANGEABLE_ON_RESUME)):",
        "    for name in []:",
        RUNS,
        "changed options silently ignored on resume",
    ),
    mutant(
        "snapshots.py",
        "        stride *= 2",
        "        stride += 1",
        ["tests/test_safety.py", "tests/test_explore.py"],
        "snapshots thinned unevenly",
    ),
    # the backend steps
    mutant(
        "backends/tensorflow.py",
        'scale_loss(terms["loss"] / tf.distribute.get_strategy().num_replicas_in_sync)',
        'scale_loss(terms["loss"])',
        ["tests/test_distribute.py"],
        "data-parallel gradients not divided by the replicas",
    ),
    mutant(
        "backends/tensorflow.py",
        'loss = self.optimizer.scale_loss(terms["loss"] / tf',
        'loss = (terms["loss"] / tf',
        ["tests/test_precision.py"],
        "loss not scaled under mixed_float16",
    ),
    mutant(
        "backends/tensorflow.py",
        "self.optimizer.apply(gradients, self.trainable_variables)",
        "self.optimizer.apply([g * 0.5 for g in gradients], self.trainable_variables)",
        TRAINING,
        "half gradients",
    ),
    mutant(
        "backends/tensorflow.py",
        "return self.update_trackers(terms, tf.shape(x)[0])\n\n    def test_step",
        "return self.update_trackers(terms, 1)\n\n    def test_step",
        TRAINING,
        "training means unweighted",
    ),
    mutant(
        "backends/__init__.py",
        "    uneven = sorted(size for size in batch_sizes if size % replicas)",
        "    uneven = []",
        ["tests/test_distribute.py"],
        "uneven batches not refused",
    ),
]


def run_mutant(mutant: Mutant, workdir: Path) -> tuple[bool, float, str]:
    """Apply the mutant to a fresh copy and run its tests; (killed, seconds, the last line pytest printed)."""
    shutil.rmtree(workdir, ignore_errors=True)
    for folder in ("keras_vae", "cli", "tests"):
        shutil.copytree(ROOT / folder, workdir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", workdir)
    source = workdir / mutant.path
    text = source.read_text()
    if text.count(mutant.original) != 1:
        raise SystemExit(
            f"{mutant.path}: the mutant's original text is found {text.count(mutant.original)} times: "
            f"{mutant.original!r}"
        )
    source.write_text(text.replace(mutant.original, mutant.mutated))
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode != 0, time.perf_counter() - started, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        help="run only the mutants of these modules (file names without .py) or whose description holds "
        "one of these words",
    )
    args = parser.parse_args()
    chosen = [
        m for m in MUTANTS if not args.only or any(word == m.module or word in m.what for word in args.only)
    ]
    killed = 0
    with tempfile.TemporaryDirectory() as temporary:
        print(f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}, {len(chosen)} mutants")
        print("| # | module | mutant | tests | result | seconds |")
        print("| --- | --- | --- | --- | --- | --- |")
        for number, m in enumerate(chosen, 1):
            dead, seconds, last = run_mutant(m, Path(temporary) / "copy")
            killed += dead
            tests = ", ".join(Path(t).stem for t in m.tests)
            print(
                f"| {number} | {m.module} | {m.what} | {tests} | "
                f"{'killed' if dead else 'SURVIVED: ' + last} | {seconds:.0f} |",
                flush=True,
            )
    print(f"\nmutation score: {killed}/{len(chosen)} killed ({killed / len(chosen):.0%})")


if __name__ == "__main__":
    main()
