"""Mutation testing on a seeded sample of mutmut's mutants (docs/testing.md): the whole run is 4,600 mutants,
about two and a half hours on two cores, so each module is scored on the same share of its mutants.

    python tools/mutmut_sample.py sample 0.12 > tools/mutmut-sample.txt    # after `mutmut run` has generated the mutants
    mutmut run $(cat tools/mutmut-sample.txt)
    python tools/mutmut_sample.py score tools/mutmut-sample.txt            # a markdown table per module, then every survivor
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import defaultdict


def results() -> dict[str, str]:
    """Each mutant's name and status, as `mutmut results --all true` prints them."""
    shown = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    return dict(line.strip().rsplit(": ", 1) for line in shown.splitlines() if ": " in line)


def module_of(name: str) -> str:
    return re.sub(r"\.x[_ǁ].*", "", name)


def sample(share: float, seed: int = 0) -> list[str]:
    by_module = defaultdict(list)
    for name in sorted(results()):
        by_module[module_of(name)].append(name)
    rng = random.Random(seed)
    return [name for names in by_module.values() for name in rng.sample(names, max(1, round(share * len(names))))]


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
            f"| {module} | {sum(by_status.values())} | {checked} | {by_status['killed']} | {by_status['timeout']} "
            f"| {by_status['survived']} | {by_status['no tests']} | {f'{killed / checked:.0%}' if checked else '-'} |"
        )
    survivors = [name for name in names if status[name] in ("survived", "no tests")]
    return "\n".join(rows + ["", "Survivors:", *survivors])


if __name__ == "__main__":
    command, argument = sys.argv[1:3]
    if command == "sample":
        print("\n".join(sample(float(argument))))
    else:
        print(score(open(argument).read().split()))
