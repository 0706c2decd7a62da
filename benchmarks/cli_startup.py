"""Start-up cost of the console script: `pixelcam --help` vs `python -c pass`, CPU time of the child, side by
side in one run (the CLI imports torch, timm and matplotlib only inside the commands that need them).

Run: `.venv/bin/python benchmarks/cli_startup.py`. Target: `pixelcam --help` <= 1.5 s CPU.
"""

from __future__ import annotations

import resource
import subprocess
import sys


def cpu_seconds(cmd: list[str], repeats: int = 5) -> float:
    """Median CPU time (user + system) of `cmd` as a child process."""
    times = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return sorted(times)[len(times) // 2]


def main() -> None:
    base = cpu_seconds([sys.executable, "-c", "pass"])
    cli = cpu_seconds([sys.executable, "-m", "pixelcam.cli", "--help"])
    sub = cpu_seconds([sys.executable, "-m", "pixelcam.cli", "study", "run", "--help"])
    print(f"python -c pass        {base:.3f} s CPU")
    print(f"pixelcam --help       {cli:.3f} s CPU ({cli / base:.1f}x python's own start-up; target <= 1.5 s)")
    print(f"pixelcam study --help {sub:.3f} s CPU")


if __name__ == "__main__":
    main()
