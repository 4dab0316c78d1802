"""``python -m bench [NAME...]``: run the named benchmarks (all when none is named)."""

from __future__ import annotations

import argparse
import sys

from bench import analytics, history, live, search
from bench import git as git_clone

BENCHMARKS = {
    "history": history,
    "git": git_clone,
    "live": live,
    "search": search,
    "analytics": analytics,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--runs", type=int, default=200, help="timed requests per page and size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    parser.add_argument(
        "--no-write", action="store_true", help="print the results, leave docs/BENCHMARKS.md alone"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of each page (largest case)"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    ok = True
    for name in args.names or list(BENCHMARKS):
        benchmark = BENCHMARKS[name]
        ok = (
            benchmark.run(
                runs=args.runs, warmup=args.warmup, write=not args.no_write, profile=args.profile
            )
            and ok
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
