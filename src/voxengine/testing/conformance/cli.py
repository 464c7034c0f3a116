"""``python -m voxengine.testing.conformance``: print the matrix or run the suite."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import (
    Sequence,
)

from voxengine.testing.conformance.harnesses import builtin_harnesses
from voxengine.testing.conformance.matrix import capability_matrix_markdown
from voxengine.testing.conformance.suite import check_provider

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voxengine.testing.conformance``: print the matrix or run the suite.

    Returns the exit status: 0 on success, 1 if a conformance run failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m voxengine.testing.conformance",
        description="Provider conformance suite and capability matrix.",
    )
    parser.add_argument(
        "--matrix",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the provider x capability Markdown table to PATH (default: stdout)",
    )
    builtins = {h.name: h for h in builtin_harnesses()}
    parser.add_argument(
        "--run", choices=sorted(builtins), action="append", help="run the suite on a provider"
    )
    args = parser.parse_args(argv)
    if args.matrix is None and not args.run:
        parser.error("give --matrix and/or --run NAME")
    if args.matrix == "-":
        sys.stdout.write(capability_matrix_markdown())
    elif args.matrix is not None:
        with open(args.matrix, "w", encoding="utf-8") as out:
            out.write(capability_matrix_markdown())
    status = 0
    for name in args.run or ():
        report = asyncio.run(check_provider(builtins[name]))
        print(report.summary())
        status = status or (0 if report.ok else 1)
    return status
