"""What one `keras-vae train` command trains: its runs' names, their folders (locked, then opened to start,
resume or replace), each run's options (fresh, or its saved ones resumed), and the runs with nothing left to
do. Of several processes, rank 0 decides and the others receive its plan."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path

from keras_vae.backends import Processes
from keras_vae.config import ConfigError, TrainConfig
from keras_vae.data import default_source
from keras_vae.runs import Run, lock, open_run
from keras_vae.training import resume_options

BOTH = "both"
"""The model kind that asks for an AE and a VAE, one run each."""


def train_options(values: dict) -> dict:
    """TrainConfig's fields among a command's values (model aside, which each run sets), as config.json keeps
    them: data_dir absolute (later commands run anywhere), dataset None beside it, the image size a list and
    the channels a number."""
    options = {
        option.name: values[option.name]
        for option in fields(TrainConfig)
        if option.name in values and option.name != "model"
    }
    data_dir = options.get("data_dir")
    options |= {
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "dataset": None if data_dir else options.get("dataset"),
        "image_size": list(options["image_size"]) if options.get("image_size") else None,
        "channels": int(options["channels"]) if options.get("channels") else None,
    }
    return options


def run_names(model: str, name: str | None, source: str, arch: str, latent_dim: int) -> dict[str, str]:
    """Each model kind's run name: name, or SOURCE-ARCH-zLATENT-KIND; with both, NAME-ae and NAME-vae."""
    kinds = ("ae", "vae") if model == BOTH else (model,)
    base = name or f"{source}-{arch}-z{latent_dim}"
    return {kind: f"{base}-{kind}" if model == BOTH or not name else name for kind in kinds}


@dataclass
class Plan:
    """The runs of one train command by model kind, each one's options, which start afresh, which have
    finished, and what to tell the user about them."""

    runs: dict[str, Run]
    configs: dict[str, TrainConfig] = field(default_factory=dict)
    starting: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @property
    def training(self) -> list[str]:
        """The kinds with epochs left to train, in order."""
        return [kind for kind in self.runs if kind not in self.finished]

    def data_config(self) -> TrainConfig:
        """The options that say which data the runs to train read; runs of different data are refused."""
        configs = [self.configs[kind] for kind in self.training]
        if (
            len({(config.dataset, config.data_dir, config.val_fraction, config.seed) for config in configs})
            != 1
        ):
            raise ConfigError("the runs to resume were trained on different data: resume them one at a time")
        return configs[0]


def plan_training(
    options: dict,
    given: set[str],
    model: str,
    name: str | None,
    output_dir: Path,
    resume: bool,
    overwrite: bool,
    stack: ExitStack,
    processes: Processes = Processes(),
) -> Plan:
    """The plan of one train command. options are train_options; given names the options the user set (model
    too), which a resumed run must not change but for epochs. Rank 0 holds each run's lock for the stack's
    life and opens the run; every process gets its plan."""
    if options["data_dir"] and "dataset" in given:
        raise ConfigError("give --dataset or --data-dir, not both")
    source = Path(options["data_dir"]).stem if options["data_dir"] else options["dataset"]
    names = run_names(model, name, source, options["arch"], options["latent_dim"])

    def opened() -> Plan:
        for run in names.values():
            stack.enter_context(lock(output_dir, run))
        return open_runs(names, options, given, output_dir, resume, overwrite)

    return processes.decide(opened)


def open_runs(
    names: dict[str, str],
    options: dict,
    given: set[str],
    output_dir: Path,
    resume: bool,
    overwrite: bool,
) -> Plan:
    """Rank 0's part of plan_training: each run opened, its options fresh or resumed, the finished ones
    found."""
    runs = {kind: open_run(output_dir, run, resume, overwrite) for kind, run in names.items()}
    plan = Plan(runs, starting={kind for kind, run in runs.items() if not (resume and run.config.exists())})
    if plan.starting:
        data_dir, note = default_source(options["dataset"], options["data_dir"])
        options = options | {
            "data_dir": str(data_dir) if data_dir else None,
            "dataset": None if data_dir else options["dataset"],
        }
        plan.notes += [note] if note else []
    for kind, run in runs.items():
        if kind in plan.starting:
            plan.configs[kind] = TrainConfig(**options, model=kind)
            continue
        asked = {key: value for key, value in (options | {"model": kind}).items() if key in given}
        plan.configs[kind], note = resume_options(run, asked)
        plan.notes += [note] if note else []
        if run.finished(plan.configs[kind].epochs):
            plan.finished.add(kind)
            plan.notes.append(
                f"{run.root} already finished its {plan.configs[kind].epochs} epochs: nothing to do"
            )
    return plan
