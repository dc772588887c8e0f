"""Benchmark the summary-statistics path at the monitoring benchmark's size: a reference of
1,000,000 rows x 20 features (plus y_pred).

Two figures, no target of their own (the issue's target is the row check's, ≤ 5 s):
  * profiling the reference when it is registered (the bins summary statistics are counted
    on; done in the registration request, which already parses the whole file);
  * the check task of a summary batch (reads the reference, bins it, PSI + chi-square per
    feature), in a fresh child process, with its peak RSS.

Wall and CPU time (time.process_time) are printed with the load average: this machine is
shared, so the lead re-measures on a quiet one. Run from the repository root:

    python bench/bench_summary.py [--rows N] [--repeat 3]
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT / "bench"))

from bench_monitoring import N_CATEGORICAL, N_NUMERIC, configure, make_frame, parquet  # noqa: E402


def prepare(rows: int, repeat: int) -> tuple[list[int], dict]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from governance import audit_chain
    from governance.models import BatchSource, MonitoringReference, MonitoringReport
    from governance.monitoring import checks, summary
    from governance.policies import policy_for
    from governance.policy_rules import monitoring_settings
    from registry import services as registry
    from tests import factories

    owner = factories.user("bench")
    project = factories.project(owner, key="bench", risk_tier="minimal")
    holdout = factories.dataset_version(project, owner, name="holdout", rows=rows)
    version = factories.model_version(factories.registered_model(project, owner), owner)
    registry.record_evaluation(version, holdout, actor=owner, metrics={"accuracy": 0.9})
    reference_frame = make_frame(rows, 1, drifted=False)
    wall, cpu = time.perf_counter(), time.process_time()
    profile = summary.reference_profile(reference_frame, checks.OUTPUT_COLUMNS)
    timing = {"profile_wall": time.perf_counter() - wall, "profile_cpu": time.process_time() - cpu}
    ref_name, ref_sha = checks._store(version, parquet(reference_frame))
    reference = MonitoringReference.objects.create(
        model_version=version,
        dataset_version=holdout,
        file=ref_name,
        sha256=ref_sha,
        row_count=rows,
        columns=[str(c) for c in reference_frame.columns],
        profile=profile,
        created_by=owner,
    )
    batch = make_frame(rows, 2, drifted=True)
    features = {}
    for name, spec in profile["features"].items():
        if spec["kind"] == "numeric":
            features[name] = {"counts": summary.counts_on(batch[name], spec["edges"])}
        else:
            counts = batch[name].value_counts()
            features[name] = {"counts": {str(k): int(v) for k, v in counts.items()}}
    body = {
        "row_count": rows,
        "features": features,
        "prediction": {
            "column": "y_pred",
            "counts": {str(k): int(v) for k, v in batch["y_pred"].value_counts().items()},
        },
    }
    checked = summary.validate(body, profile, task="binary")
    name, sha = checks._store(version, audit_chain.canonical_json(checked).encode())
    settings = monitoring_settings(policy_for(project).definition)
    ids = [
        MonitoringReport.objects.create(
            model_version=version,
            reference=reference,
            reference_dataset_version=holdout,
            batch=name,
            batch_sha256=sha,
            source=BatchSource.SUMMARY,
            thresholds=settings,
            requested_by=owner,
        ).pk
        for _ in range(repeat)
    ]
    return ids, timing


def run_one(report_id: int) -> None:
    from governance.models import MonitoringReport
    from governance.tasks import run_monitoring_check_task

    wall, cpu = time.perf_counter(), time.process_time()
    run_monitoring_check_task(report_id, None, "bench")
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    report = MonitoringReport.objects.get(pk=report_id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    drifted = sorted(n for n, f in (report.data_drift or {}).get("features", {}).items()
                     if f["level"] != "ok")  # fmt: skip
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu_seconds,
                "peak_bytes": peak,
                "status": report.status,
                "error": report.error,
                "drifted": drifted,
            }
        )
    )


def child(report_id: int, workdir: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(report_id), "--workdir", workdir],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(
        f"  run: {result['seconds']:.2f} s wall, {result['cpu']:.2f} s CPU, "
        f"peak RSS {result['peak_bytes'] / 2**20:.0f} MiB"
    )
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
    workdir = tempfile.mkdtemp(prefix="stagegate-bench-summary-")
    configure(workdir)
    features = N_NUMERIC + N_CATEGORICAL
    print(f"preparing a {args.rows:,} x {features} reference in {workdir} ...", flush=True)
    try:
        report_ids, timing = prepare(args.rows, args.repeat)
        runs = [child(report_id, workdir) for report_id in report_ids]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = min(runs, key=lambda r: r["seconds"])
    print(f"status {best['status']} {best['error']}; drifted: {', '.join(best['drifted'])}")
    print(
        f"reference profile (in the registration request), {args.rows:,} x {features}: "
        f"{timing['profile_wall']:.2f} s wall, {timing['profile_cpu']:.2f} s CPU"
    )
    print(
        f"summary check task against it: best {best['seconds']:.2f} s wall, "
        f"{best['cpu']:.2f} s CPU, peak RSS {max(r['peak_bytes'] for r in runs) / 2**30:.2f} GiB"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
