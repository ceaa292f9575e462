"""What every HTTP bench's ``main`` does around its measurements.

Options left unset take the quick or the full run's values; SIGTERM stops the bench as Ctrl-C does; figures
appear as they are measured; the run gets a scratch folder and an exit stack, closed in order on the way out
(servers stopped, any throwaway PostgreSQL database dropped) however it ends; and the total time is printed::

    fill_defaults(args, {"rounds": 2} if args.quick else {"rounds": 5})
    results = run_bench("http", lambda scratch, stack: run(args, scratch, stack))
    exit_if_failed(sum(result.failed for result in results))
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def fill_defaults(args: argparse.Namespace, defaults: Mapping[str, Any]) -> None:
    """Set each option of ``defaults`` that the command line left at None."""
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_bench(name: str, work: Callable[[Path, contextlib.ExitStack], T]) -> T:
    """``work(scratch, stack)`` in a ``qala-bench-<name>-*`` temp folder; exit 130 with one line when interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures appear as they are measured
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"qala-bench-{name}-") as scratch, contextlib.ExitStack() as stack:
            result = work(Path(scratch), stack)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, temp files and any PostgreSQL database removed", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return result


def exit_if_failed(failed: int, what: str = "requests") -> None:
    """Exit 1 saying the figures are void when ``failed`` requests were not answered with a 2xx/3xx status."""
    if failed:
        print(f"{failed} {what} FAILED (non-2xx/3xx or socket errors): the figures above are not valid")
        raise SystemExit(1)
