"""Benchmark feature_drift on 1,000,000 rows x 20 features against a reference of the same size.

Target: <= 5 s end to end and <= 2 GB peak memory. Run from the repository root:

    python bench/bench_drift.py [--rows N] [--repeat 3]

Prints the best-of-N wall time of feature_drift, the process peak RSS (ru_maxrss, which includes
the two generated frames) and the tracemalloc peak of one feature_drift call on its own.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from governance.monitoring.drift import DEFAULT_DRIFT_THRESHOLDS, feature_drift  # noqa: E402

N_NUMERIC = 15
TARGET_SECONDS = 5.0
TARGET_BYTES = 2 * 1024**3


def make_frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """15 numeric and 5 categorical columns; ``drifted`` shifts a few of them."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(N_NUMERIC):
        shift = 0.5 if drifted and i in (0, 1) else 0.0
        match i % 3:
            case 0:
                values = rng.normal(shift, 1.0, rows)
            case 1:
                values = rng.lognormal(shift, 0.75, rows)
            case _:
                values = rng.integers(0, 100, rows).astype(np.float64) + shift * 10
        if i in (3, 4):
            values[rng.random(rows) < 0.01] = np.nan
        cols[f"num_{i:02d}"] = values
    letters = np.array(list("abcdefghij"))
    probs = np.full(10, 0.1)
    if drifted:
        probs = np.array([0.2, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    cols["cat_category"] = pd.Categorical(rng.choice(letters, rows, p=probs))
    cols["cat_category_b"] = pd.Categorical(rng.choice(letters[:4], rows))
    cols["cat_str"] = pd.Series(rng.choice(letters, rows))
    countries = np.array(["FR", "DE", "IT", "ES", "NL", "BE"])
    if drifted:
        countries = np.append(countries, "PL")
    cols["cat_object"] = pd.Series(rng.choice(countries, rows)).astype(object)
    cols["cat_bool"] = rng.random(rows) < 0.3
    return pd.DataFrame(cols)


def main() -> None:
    """Generate the frames, time feature_drift and report peak memory against the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    reference = make_frame(args.rows, seed=1, drifted=False)
    current = make_frame(args.rows, seed=2, drifted=True)
    print(
        f"generated 2 x {args.rows:,} rows x {reference.shape[1]} features "
        f"({(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()) / 1e6:.0f} MB) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    timings = []
    report = None
    for _ in range(args.repeat):
        gc.collect()
        start = time.perf_counter()
        report = feature_drift(reference, current, thresholds=DEFAULT_DRIFT_THRESHOLDS)
        timings.append(time.perf_counter() - start)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    gc.collect()
    tracemalloc.start()
    feature_drift(reference, current, thresholds=DEFAULT_DRIFT_THRESHOLDS)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert report is not None
    print(f"levels: overall={report.level}; drifted={report.drifted}")
    best = min(timings)
    runs = ", ".join(f"{t:.2f}" for t in timings)
    print(
        f"feature_drift time  best of {args.repeat}: {best:.2f} s (runs: {runs})   "
        f"target <= {TARGET_SECONDS:.0f} s   {'OK' if best <= TARGET_SECONDS else 'OVER'}"
    )
    print(
        f"peak RSS (process): {rss_peak / 2**30:.2f} GB (after data generation: "
        f"{rss_before / 2**30:.2f} GB)   target <= 2 GB   "
        f"{'OK' if rss_peak <= TARGET_BYTES else 'OVER'}"
    )
    print(f"tracemalloc peak of one feature_drift call: {traced_peak / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
