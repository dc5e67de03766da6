"""Start-up cost: `deepwright --help` and `python -c "import deepwright"`, against `python -c pass` as the floor.

Each command is a subprocess timed from launch to exit; the three are interleaved, `--repeats` times (default
10), and the medians are reported with the floor subtracted as well. Also reports which heavy modules
(torch, pandas, numpy, pydantic…) `deepwright --help` imports. Goals: `--help` < 0.3 s, import < 0.5 s.

    .venv/bin/python benchmarks/startup.py [--repeats 10]
"""

from __future__ import annotations

import json
from typing import Any

from _common import (
    PYTHON,
    base_parser,
    deepwright_command,
    emit,
    environment,
    log,
    measured,
    median,
    run_timed,
    wait_for_quiet_cpu,
)

GOALS_S = {"deepwright_help": 0.3, "import_deepwright": 0.5}
HEAVY_MODULES = ("torch", "pandas", "numpy", "pydantic", "sklearn", "matplotlib", "yaml", "rich")
# Runs the CLI's --help in-process and lists the heavy modules it left imported.
HELP_IMPORTS = f"""
import json, sys
from deepwright.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps([name for name in {HEAVY_MODULES!r} if name in sys.modules]))
"""


def commands() -> dict[str, list[str]]:
    """The compared commands, by name."""
    return {
        "deepwright_help": [*deepwright_command(), "--help"],
        "import_deepwright": [PYTHON, "-c", "import deepwright"],
        "python_pass": [PYTHON, "-c", "pass"],
    }


def heavy_imports_of_help() -> list[str]:
    """The heavy modules loaded by `deepwright --help`."""
    _, stdout = run_timed([PYTHON, "-c", HELP_IMPORTS])
    return json.loads(stdout.strip().splitlines()[-1])


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=10, data_dir=False)
    args = parser.parse_args()
    named = commands()
    for command in named.values():  # one untimed run each: page cache and .pyc files
        run_timed(command)
    times: dict[str, list[float]] = {name: [] for name in named}
    wait_for_quiet_cpu(timeout_s=args.wait_quiet)  # once: the commands are short and interleaved

    def rounds() -> dict[str, Any]:
        for _ in range(args.repeats):
            for name, command in named.items():
                times[name].append(run_timed(command)[0])
        return {}

    others = measured(rounds)["others_cpu_share"]
    medians = {name: median(values) for name, values in times.items()}
    floor = medians["python_pass"]
    log(", ".join(f"{name} {value:.3f} s" for name, value in medians.items()))
    emit(
        {
            "benchmark": "startup",
            "compares": "`deepwright --help` and `python -c 'import deepwright'` vs `python -c pass` (subprocesses)",
            "goal": {name: f"< {limit} s" for name, limit in GOALS_S.items()},
            "repeats": args.repeats,
            "median_s": {name: round(value, 4) for name, value in medians.items()},
            "above_floor_s": {name: round(medians[name] - floor, 4) for name in GOALS_S},
            "goal_met": {name: medians[name] < limit for name, limit in GOALS_S.items()},
            "help_imports": heavy_imports_of_help(),
            "others_cpu_share": others,
            "environment": environment(),
            "all_s": {name: [round(value, 4) for value in values] for name, values in times.items()},
        }
    )


if __name__ == "__main__":
    main()
