"""What every benchmark prints about the machine it ran on.

The reference loop is a fixed pure-Python loop: this shared machine's speed moves by up to
2.5x from minute to minute, and the loop's time says which state a figure was taken in.
"""

import os
import platform
import time
from pathlib import Path


def reference_loop_ms() -> float:
    started = time.perf_counter()
    sum(range(10_000_000))
    return (time.perf_counter() - started) * 1e3


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(*, reference_loop: bool = True) -> str:
    """Platform, Python, CPUs and their model, load average (and the reference loop)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"({cpu}), load average {load_average()}"
    )
    if reference_loop:
        text += f"; reference loop {reference_loop_ms():.0f} ms"
    return text
