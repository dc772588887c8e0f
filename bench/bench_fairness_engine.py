"""Benchmark: governance.fairness.engine against Fairlearn's MetricFrame on the same arrays.

Run from the repository root:  python bench/bench_fairness_engine.py [--with-fairlearn-bootstrap]

A. 1,000,000 rows, two sensitive features (5 x 4 = 20 groups), six metrics, no bootstrap:
   engine time vs MetricFrame time (MetricFrame takes ~30 s; it runs once) and equality.
B. 100,000 rows, same groups and metrics, n_boot=100: engine time. MetricFrame takes ~330 s
   here, so it only runs with --with-fairlearn-bootstrap.
C. Peak memory of the engine (tracemalloc) and of the whole process (ru_maxrss).
Every line prints the measured figure and its target.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from governance.fairness.engine import compute_frame  # noqa: E402

METRICS = [
    "count",
    "selection_rate",
    "accuracy",
    "true_positive_rate",
    "false_positive_rate",
    "precision",
]
QUANTILES = [0.025, 0.5, 0.975]
TARGET_1M_S = 1.0
TARGET_SPEEDUP = 50.0
TARGET_BOOT_S = 2.0
TARGET_PEAK_MB = 500.0


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Same generator as shared/reference/fairlearn_vs_numpy.py: rates differ by group."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["a", "b", "c", "d", "e"], size=n)
    race = rng.choice(["w", "x", "y", "z"], size=n)
    y_true = rng.integers(0, 2, size=n)
    p = 0.3 + 0.4 * y_true + 0.05 * (sex == "a") - 0.05 * (race == "z")
    y_pred = (rng.random(n) < p).astype(int)
    return y_true, y_pred, pd.DataFrame({"sex": sex, "race": race})


def fairlearn_metrics() -> dict:
    from fairlearn.metrics import (
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    return {
        "count": count,
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "precision": precision_score,
    }


def best_of(fn, repeats: int = 3):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def max_abs_diff(ours, theirs) -> float:
    a = np.asarray(ours, dtype=float)
    b = np.asarray(theirs, dtype=float)
    if a.shape != b.shape or not (np.isnan(a) == np.isnan(b)).all():
        return float("inf")
    return float(np.nanmax(np.abs(a - b), initial=0.0))


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def bench_million(skip_fairlearn: bool) -> None:
    y_true, y_pred, sf = make_data(1_000_000)
    t_engine, runs, frame = best_of(lambda: compute_frame(y_true, y_pred, sf, METRICS))
    print(
        f"A engine, 1M rows, 20 groups, 6 metrics: {t_engine:.3f} s (best of "
        f"{[round(t, 3) for t in runs]})  target <= {TARGET_1M_S:.1f} s  "
        f"{verdict(t_engine <= TARGET_1M_S)}"
    )
    if skip_fairlearn:
        return
    from fairlearn.metrics import MetricFrame

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(
            metrics=fairlearn_metrics(), y_true=y_true, y_pred=y_pred, sensitive_features=sf
        )
    t_mf = time.perf_counter() - start
    speedup = t_mf / t_engine
    print(f"A MetricFrame, same arrays (one run): {t_mf:.3f} s  target: reference only")
    print(
        f"A speed-up: {speedup:.0f}x  target >= {TARGET_SPEEDUP:.0f}x  "
        f"{verdict(speedup >= TARGET_SPEEDUP)}"
    )
    diffs = {
        "by_group": max_abs_diff(frame.by_group, mf.by_group),
        "overall": max_abs_diff(frame.overall, mf.overall),
        "difference": max_abs_diff(frame.difference(), mf.difference()),
        "ratio": max_abs_diff(frame.ratio(), mf.ratio()),
        "ratio to_overall": max_abs_diff(frame.ratio("to_overall"), mf.ratio("to_overall")),
    }
    for name, diff in diffs.items():
        print(f"A max |engine - MetricFrame| {name}: {diff}  target 0.0  {verdict(diff == 0.0)}")


def bench_bootstrap(with_fairlearn: bool) -> None:
    y_true, y_pred, sf = make_data(100_000, seed=1)
    kwargs = {"n_boot": 100, "ci_quantiles": QUANTILES, "random_state": 42}

    def run():
        frame = compute_frame(y_true, y_pred, sf, METRICS, **kwargs)
        # Include the interval computations a report needs, not just the replicates.
        frame.by_group_ci, frame.difference_ci(), frame.ratio_ci("to_overall")  # noqa: B018
        return frame

    t_boot, runs, frame = best_of(run)
    print(
        f"B engine, 100k rows, n_boot=100: {t_boot:.3f} s (best of "
        f"{[round(t, 3) for t in runs]})  target <= {TARGET_BOOT_S:.1f} s  "
        f"{verdict(t_boot <= TARGET_BOOT_S)}"
    )
    if not with_fairlearn:
        print("B MetricFrame bootstrap: skipped (~330 s; pass --with-fairlearn-bootstrap)")
        return
    from fairlearn.metrics import MetricFrame

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(
            metrics=fairlearn_metrics(),
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sf,
            **kwargs,
        )
    t_mf = time.perf_counter() - start
    print(f"B MetricFrame bootstrap (one run): {t_mf:.1f} s  speed-up {t_mf / t_boot:.0f}x")
    worst = max(
        max_abs_diff(ours, theirs)
        for ours, theirs in zip(frame.by_group_ci, mf.by_group_ci, strict=True)
    )
    print(f"B max |engine - MetricFrame| by_group_ci: {worst}  target 0.0  {verdict(worst == 0)}")


def bench_memory() -> None:
    y_true, y_pred, sf = make_data(1_000_000)
    tracemalloc.start()
    compute_frame(y_true, y_pred, sf, METRICS)
    _, peak_frame = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    y_true, y_pred, sf = make_data(100_000, seed=1)
    compute_frame(y_true, y_pred, sf, METRICS, n_boot=100, ci_quantiles=QUANTILES, random_state=1)
    _, peak_boot = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for label, peak in (("1M rows", peak_frame), ("100k rows n_boot=100", peak_boot)):
        mb = peak / 2**20
        print(
            f"C engine peak traced memory, {label}: {mb:.1f} MB  target <= "
            f"{TARGET_PEAK_MB:.0f} MB  {verdict(mb <= TARGET_PEAK_MB)}"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"C process max RSS (includes MetricFrame and data): {rss_mb:.0f} MB  target: info")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-fairlearn-bootstrap", action="store_true")
    parser.add_argument("--skip-fairlearn", action="store_true", help="skip the ~30 s A run")
    args = parser.parse_args()
    bench_million(args.skip_fairlearn)
    bench_bootstrap(args.with_fairlearn_bootstrap)
    bench_memory()


if __name__ == "__main__":
    main()
