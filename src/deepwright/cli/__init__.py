"""The `deepwright` command: parses arguments, calls `deepwright.api`, prints, and sets the exit status.

Heavy libraries (torch, pandas, pydantic) are imported inside the commands, so `deepwright --help` stays fast.
A `DeepwrightError` (a mistake in the input) prints as one short message and exits with status 2.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["main"]

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return the exit status."""
    from deepwright.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    import warnings

    from deepwright.errors import DeepwrightError

    warnings.showwarning = _show_warning
    try:
        args.handler(args)
    except DeepwrightError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of standard output left early (`deepwright init --schema | head`)
        _silence_stdout()
        return 1
    except Exception as error:
        from deepwright.data.io import disk_problem

        problem = disk_problem(error)  # a full disk or the file-size limit, met by a writer of any library
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _show_warning(message: Warning | str, category: type[Warning], *where: Any, **details: Any) -> None:
    """Print deepwright's own warnings as one 'warning:' line (others as Python prints them)."""
    import warnings

    from deepwright.errors import DeepwrightWarning

    if issubclass(category, DeepwrightWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, *where[:2]), file=sys.stderr, end="")
