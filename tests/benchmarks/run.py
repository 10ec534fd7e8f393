"""`make bench`: run every benchmark module (tests/benchmarks/bench_*.py) and print figures.

Benchmarks assert nothing: they print medians, percentiles and ratios measured side by side
in one run, with the machine they ran on, for the README's performance section.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main(argv: list[str]) -> int:
    wanted = set(argv)
    print(f"machine: {machine()}\n", flush=True)
    summary: list[str] = []
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        name = path.stem
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        line = module.main()
        if isinstance(line, str):
            summary.append(f"  {name}: {line}")
        print(flush=True)
    if summary:  # the two speed targets side by side, from this one run
        print("== summary", *summary, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
