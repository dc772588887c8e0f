"""Benchmark a monitoring check through its Celery task: 1,000,000 rows x 20 features (plus
y_pred) against a reference of the same size.

Target: <= 5 s and <= 2 GB peak memory. Run from the repository root:

    python bench/bench_monitoring.py [--rows N] [--repeat 3]

It builds a throw-away SQLite database and media folder, writes the reference and the batch as
Parquet (15 numeric and 5 categorical features, a few of them drifted), registers them as a
MonitoringReference and a queued MonitoringReport, and then, in a fresh child process per
repeat, calls `run_monitoring_check_task` (the task body: read both files, data drift,
prediction drift, store the report, act on breaches). The child reports the task's wall time
and its own peak RSS (ru_maxrss: Django, the libraries and the check together).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 5.0
TARGET_BYTES = 2 * 1024**3
N_NUMERIC = 15
N_CATEGORICAL = 5


def configure(workdir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "1"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ["MEDIA_ROOT"] = f"{workdir}/media"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    import django

    django.setup()


def make_frame(rows: int, seed: int, drifted: bool):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(N_NUMERIC):
        shift = 0.5 if drifted and i in (0, 1) else 0.0
        cols[f"num_{i}"] = rng.normal(shift, 1.0 + 0.1 * i, rows)
    for i in range(N_CATEGORICAL):
        levels = np.array([f"c{k}" for k in range(4 + i)])
        p = np.full(levels.size, 1 / levels.size)
        if drifted and i == 0:
            p = np.linspace(1, 3, levels.size)
            p /= p.sum()
        cols[f"cat_{i}"] = pd.Categorical(rng.choice(levels, rows, p=p))
    cols["y_pred"] = (rng.random(rows) < (0.35 if drifted else 0.3)).astype(np.int8)
    return pd.DataFrame(cols)


def parquet(frame) -> bytes:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    return body.getvalue()


def prepare(workdir: str, rows: int, repeat: int) -> list[int]:
    """Migrate a fresh database and queue `repeat` reports of the same batch."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from governance.models import MonitoringReference, MonitoringReport
    from governance.monitoring import checks
    from governance.policies import policy_for
    from governance.policy_rules import monitoring_settings
    from registry import services as registry
    from tests import factories

    owner = factories.user("bench")
    project = factories.project(owner, key="bench", risk_tier="minimal")
    holdout = factories.dataset_version(project, owner, name="holdout", rows=rows)
    version = factories.model_version(factories.registered_model(project, owner), owner)
    registry.record_evaluation(version, holdout, actor=owner, metrics={"accuracy": 0.9})
    # Stored directly: the bench times the check, not the upload or the path to production.
    ref_name, ref_sha = checks._store(version, parquet(make_frame(rows, 1, drifted=False)))
    batch_name, batch_sha = checks._store(version, parquet(make_frame(rows, 2, drifted=True)))
    reference = MonitoringReference.objects.create(
        model_version=version,
        dataset_version=holdout,
        file=ref_name,
        sha256=ref_sha,
        row_count=rows,
        columns=[f"num_{i}" for i in range(N_NUMERIC)]
        + [f"cat_{i}" for i in range(N_CATEGORICAL)]
        + ["y_pred"],
        created_by=owner,
    )
    settings = monitoring_settings(policy_for(project).definition)
    return [
        MonitoringReport.objects.create(
            model_version=version,
            reference=reference,
            reference_dataset_version=holdout,
            batch=batch_name,
            batch_sha256=batch_sha,
            thresholds=settings,
            requested_by=owner,
        ).pk
        for _ in range(repeat)
    ]


def run_one(report_id: int) -> None:
    """Child process: time the task on one report and print JSON."""
    from governance.models import MonitoringReport
    from governance.tasks import run_monitoring_check_task

    started = time.perf_counter()
    result = run_monitoring_check_task(report_id, None, "bench")
    seconds = time.perf_counter() - started
    report = MonitoringReport.objects.get(pk=report_id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_bytes": peak,
                "status": report.status,
                "levels": result["levels"],
                "breached": report.breached,
                "drifted": sorted(
                    n for n, f in report.data_drift["features"].items() if f["level"] != "ok"
                ),
            }
        )
    )


def child(report_id: int, workdir: str) -> dict:
    """Run the task in a fresh process, so its peak RSS is the check's alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(report_id), "--workdir", workdir],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"  run: {result['seconds']:.2f} s, peak RSS {result['peak_bytes'] / 2**20:.0f} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        configure(args.workdir)
        run_one(args.child)
        return
    workdir = tempfile.mkdtemp(prefix="stagegate-bench-monitoring-")
    configure(workdir)
    print(f"preparing {args.rows:,} x 20 reference and batch in {workdir} ...", flush=True)
    report_ids = prepare(workdir, args.rows, args.repeat)
    try:
        runs = [child(report_id, workdir) for report_id in report_ids]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = min(r["seconds"] for r in runs)

    peak = max(r["peak_bytes"] for r in runs)
    print(f"status {runs[0]['status']}, levels {runs[0]['levels']}")
    print(f"drifted features: {', '.join(runs[0]['drifted'])}")
    print(
        f"monitoring check task, {args.rows:,} rows x 20 features vs same-size reference: "
        f"best {best:.2f} s (target <= {TARGET_SECONDS} s) "
        f"{'PASS' if best <= TARGET_SECONDS else 'FAIL'}; "
        f"peak RSS {peak / 2**30:.2f} GiB (target <= 2 GiB) "
        f"{'PASS' if peak <= TARGET_BYTES else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
