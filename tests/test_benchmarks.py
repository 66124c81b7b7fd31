"""benchmarks/throughput.py's arithmetic: best round per case, each round's ratio, ratios on conv rows only."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("throughput", Path(__file__).parents[1] / "benchmarks" / "throughput.py")
throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(throughput)


def row(kind: str, arch: str, images_per_s: int) -> dict:
    backend = "torch" if kind == "plain PyTorch" else "jax"
    return {"kind": kind, "backend": backend, "arch": arch, "images_per_s": images_per_s, "first_epoch_s": 1.0, "peak_mb": 1}


ROUNDS = [
    [row("plain PyTorch", "conv", 2000), row("keras-vae", "conv", 1000), row("keras-vae", "dense", 9000)],
    [row("plain PyTorch", "conv", 4000), row("keras-vae", "conv", 3000), row("keras-vae", "dense", 8000)],
]


def test_best_of_keeps_each_case_best_round_and_every_round_ratio():
    results = throughput.best_of(ROUNDS)
    assert [r["images_per_s"] for r in results] == [4000, 3000, 9000]
    assert results[1]["round_ratios"] == [0.5, 0.75]
    assert results[2]["round_ratios"] == [4.5, 2.0]


def test_report_puts_ratios_on_conv_rows_only():
    lines = throughput.report(throughput.best_of(ROUNDS), "cmd", 4, 128, 2, 10_000).splitlines()
    conv, dense = (next(line for line in lines if f"| keras-vae | jax | {arch} |" in line) for arch in ("conv", "dense"))
    assert conv.endswith("| 0.75x | - | 0.50x, 0.75x |")  # no keras.io baseline in this run
    assert dense.endswith("| - | - | - |")
