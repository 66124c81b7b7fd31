"""benchmarks/throughput.py's arithmetic: best round per case, each round's ratio, ratios on conv rows
only."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "throughput", Path(__file__).parents[1] / "benchmarks" / "throughput.py"
)
throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(throughput)


def row(kind: str, arch: str, images_per_s: int, batch: int = 128) -> dict:
    backend = "torch" if kind == "plain PyTorch" else "jax"
    case = {"kind": kind, "backend": backend, "arch": arch, "batch": batch, "policy": "float32", "steps": 1}
    return {**case, "images_per_s": images_per_s, "first_epoch_s": 1.0, "peak_mb": 1}


ROUNDS = [
    [row("plain PyTorch", "conv", 2000), row("keras-vae", "conv", 1000), row("keras-vae", "dense", 9000)],
    [row("plain PyTorch", "conv", 4000), row("keras-vae", "conv", 3000), row("keras-vae", "dense", 8000)],
]
BY_BATCH = [
    [
        row("plain PyTorch", "conv", 1000, 32),
        row("plain PyTorch", "conv", 4000),
        row("keras-vae", "conv", 500, 32),
        row("keras-vae", "conv", 3000),
    ],
]


def test_best_of_keeps_each_case_best_round_and_every_round_ratio():
    results = throughput.best_of(ROUNDS)
    assert [r["images_per_s"] for r in results] == [4000, 3000, 9000]
    assert results[1]["round_ratios"] == [0.5, 0.75]
    assert results[2]["round_ratios"] == [4.5, 2.0]


def test_report_puts_ratios_on_conv_rows_only():
    lines = throughput.report(throughput.best_of(ROUNDS), "cmd", 4, 2, 10_000).splitlines()
    conv, dense = (
        next(line for line in lines if f"| keras-vae | jax | {arch} |" in line) for arch in ("conv", "dense")
    )
    assert conv.endswith("| 0.75x | - | 0.50x, 0.75x |")  # no keras.io baseline in this run
    assert dense.endswith("| - | - | - |")


def test_ratios_are_against_the_baseline_of_the_same_batch_size():
    results = throughput.best_of(BY_BATCH)
    assert [r["round_ratios"] for r in results[2:]] == [[0.5], [0.75]]


def test_cases_cross_every_dimension_but_torch_runs_one_step_per_execution():
    args = type(
        "Args",
        (),
        {
            "batch_sizes": [32, 128],
            "dtype_policies": ["float32", "mixed_float16"],
            "steps_per_execution": [1, 8],
            "backends": ["jax", "torch"],
            "archs": ["conv"],
        },
    )()
    found = throughput.cases(args)
    ours = [case for case in found if case["kind"] == "keras-vae"]
    assert len(ours) == 2 * 2 * (2 + 1) and not any(c["backend"] == "torch" and c["steps"] > 1 for c in ours)
    assert {(c["kind"], c["batch"]) for c in found if c["kind"] != "keras-vae"} >= {
        ("plain PyTorch", 32),
        ("plain PyTorch", 128),
    }
