"""Mutation testing on a seeded sample of mutmut's mutants (docs/testing.md): the whole run is 4,800 mutants,
about 11 hours on two cores, so each module is scored on the same share of its mutants (at least 12 of each).

    # after `mutmut run` has generated the mutants:
    python tools/mutmut_sample.py sample 0.05 > tools/mutmut-sample.txt
    mutmut run $(cat tools/mutmut-sample.txt)
    # a markdown table per module, then every survivor:
    python tools/mutmut_sample.py score tools/mutmut-sample.txt
    # each survivor against its module's test files:
    python tools/mutmut_sample.py recheck tools/mutmut-sample.txt

mutmut runs a mutant against the tests during which its function was called; a function called while a module
fixture is set up is credited to the first test that used the fixture alone. `recheck` runs each survivor
again, in mutants/, against every test file of its module (TEST_FILES) and prints which of them those tests
kill.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor


def results() -> dict[str, str]:
    """Each mutant's name and status, as `mutmut results --all true` prints them."""
    shown = subprocess.run(
        ["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.strip().rsplit(": ", 1) for line in shown.splitlines() if ": " in line)


TEST_FILES = {
    "keras_vae.data": [
        "tests/test_data.py",
        "tests/test_sources.py",
        "tests/test_wiring.py",
        "tests/test_distribute.py",
    ],
    "keras_vae.trained": [
        "tests/test_explore.py",
        "tests/test_quality.py",
        "tests/test_wiring.py",
        "tests/test_cli.py",
    ],
    "keras_vae.samplers": ["tests/test_quality.py", "tests/test_explore.py"],
    "keras_vae.models": [
        "tests/test_models.py",
        "tests/test_losses.py",
        "tests/test_wiring.py",
        "tests/test_training.py",
        "tests/test_quality.py",
        "tests/test_families.py",
        "tests/test_saving.py",
    ],
    "keras_vae.serve": ["tests/test_serve.py"],
}
"""The test files of each module (a package's name stands for its modules)."""


def module_of(name: str) -> str:
    return re.sub(r"\.x[_ǁ].*", "", name)


def sample(share: float, minimum: int = 12, seed: int = 0) -> list[str]:
    """A seeded share of each module's mutants, and at least `minimum` of a small module's, so its score means
    something: the first of a seeded shuffle, so a larger share keeps every mutant of a smaller one."""
    by_module = defaultdict(list)
    for name in sorted(results()):
        by_module[module_of(name)].append(name)
    rng = random.Random(seed)
    chosen = []
    for names in by_module.values():
        rng.shuffle(names)
        chosen += names[: max(minimum, round(share * len(names)))]
    return chosen


def score(names: list[str]) -> str:
    status = results()
    counts = defaultdict(lambda: defaultdict(int))
    for name in names:
        counts[module_of(name)][status[name]] += 1
    rows = [
        "| module | sampled | checked | killed | timeout | survived | no test ran it | killed of checked |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module, by_status in sorted(counts.items()):
        checked = sum(by_status.values()) - by_status["not checked"]
        killed = by_status["killed"] + by_status["timeout"]
        rows.append(
            f"| {module} | {sum(by_status.values())} | {checked} | {by_status['killed']} | "
            f"{by_status['timeout']} "
            f"| {by_status['survived']} | {by_status['no tests']} | "
            f"{f'{killed / checked:.0%}' if checked else '-'} |"
        )
    survivors = [name for name in names if status[name] in ("survived", "no tests")]
    return "\n".join(rows + ["", "Survivors:", *survivors])


def recheck_one(name: str) -> str:
    """Whether every test file of the mutant's module kills it, run in mutants/."""
    files = next(files for prefix, files in TEST_FILES.items() if module_of(name).startswith(prefix))
    run = (
        "import sys, mutmut, pytest; sys.exit(pytest.main(['-x', '-q', '-p', 'no:cacheprovider', "
        "*sys.argv[1:]]))"
    )
    env = {**os.environ, "MUTANT_UNDER_TEST": name}
    done = subprocess.run(
        [sys.executable, "-c", run, *files], cwd="mutants", env=env, capture_output=True, timeout=1800
    )
    verdict = (
        "killed"
        if done.returncode == 1
        else "survived"
        if done.returncode == 0
        else f"exit {done.returncode}"
    )
    print(name, verdict, flush=True)
    return verdict


def recheck(names: list[str], workers: int = 2) -> dict[str, str]:
    """Each survivor of names against every test file of its module, two at a time."""
    status = results()
    survivors = [name for name in names if status[name] in ("survived", "no tests")]
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(survivors, pool.map(recheck_one, survivors)))


if __name__ == "__main__":
    command, argument = sys.argv[1:3]
    if command == "sample":
        print("\n".join(sample(float(argument))))
    elif command == "recheck":
        recheck(open(argument).read().split())
    else:
        print(score(open(argument).read().split()))
