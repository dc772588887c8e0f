"""Production batches as summary statistics: counts on the reference's bins give exactly the
PSI and chi-square the rows give; KS is only bounded from bins and says so; bad summaries are
refused whole."""

from typing import Any

import numpy as np
import pytest
from scipy import stats

from governance.models import MonitoringReport
from governance.monitoring import checks, drift, summary
from tests.governance.test_monitoring import check, deploy, frame, minimal_project

pytestmark = pytest.mark.django_db
SUMMARY = "/api/v1/monitoring/reports/summary/"
EPSILON = 1e-4


@pytest.fixture
def shop(owner, member, reviewer, compliance, auditor):
    return minimal_project(owner, member, reviewer, compliance, auditor)


@pytest.fixture
def deployed(shop, owner, reviewer):
    return deploy(shop, owner, reviewer)


@pytest.fixture(autouse=True)
def _tasks_on_commit(django_capture_on_commit_callbacks):
    global capture
    capture = django_capture_on_commit_callbacks
    yield


def bins_of(api, version, user):
    reference = version.monitoring_reference
    response = api.as_user(user).get(f"/api/v1/monitoring/references/{reference.pk}/bins/")
    assert response.status_code == 200, response.content
    return response.json()


def categorical(values) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def summarise(data, bins, *, performance=True) -> dict:
    """What a client holding the rows would send: counts on the reference's own bins."""
    features: dict[str, dict[str, Any]] = {}
    for name, spec in bins["features"].items():
        if spec["kind"] == "numeric":
            features[name] = {"counts": summary.counts_on(data[name], spec["edges"])}
        else:
            features[name] = {"counts": categorical(data[name])}
    body = {
        "row_count": len(data),
        "features": features,
        "prediction": {"column": "y_pred", "counts": categorical(data["y_pred"])},
    }
    if performance:
        t, p = data["y_true"].to_numpy(), data["y_pred"].to_numpy()
        body["performance"] = {
            "confusion": {
                "tp": int(((t == 1) & (p == 1)).sum()),
                "fp": int(((t == 0) & (p == 1)).sum()),
                "fn": int(((t == 1) & (p == 0)).sum()),
                "tn": int(((t == 0) & (p == 0)).sum()),
            }
        }
    return body


def post(api, user, version, body):
    with capture(execute=True):
        return api.as_user(user).post(SUMMARY, {"model_version": version.pk, **body}, format="json")


def hand_psi(ref_counts, cur_counts) -> float:
    p = np.maximum(np.asarray(ref_counts) / sum(ref_counts), EPSILON)
    q = np.maximum(np.asarray(cur_counts) / sum(cur_counts), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def hand_chi2(ref_counts, cur_counts) -> float:
    table = np.array([ref_counts, cur_counts])
    return float(stats.chi2_contingency(table[:, table.sum(axis=0) > 0]).statistic)


def test_bins_are_the_edges_the_row_path_uses(api, deployed, auditor):
    bins = bins_of(api, deployed, auditor)
    reference = frame(0)
    assert bins["bins"] == 10
    assert bins["features"]["x1"] == {
        "kind": "numeric",
        "edges": drift.reference_edges(reference.x1).tolist(),
    }
    assert bins["features"]["sex"] == {"kind": "categorical", "categories": ["f", "m"]}
    assert bins["outputs"] == {"y_pred": {"kind": "categorical", "categories": ["0", "1"]}}
    assert bins["dataset_version"] == deployed.monitoring_reference.dataset_version_id


def test_counts_on_the_reference_bins_give_the_row_paths_psi_and_chi_square(
    api, deployed, owner, member
):
    batch = frame(2, shift=1.0)
    rows = check(deployed, batch, actor=owner, capture=capture)
    bins = bins_of(api, deployed, member)
    response = post(api, member, deployed, summarise(batch, bins))
    assert response.status_code == 202, response.content
    assert response.json()["source"] == "summary"
    report = MonitoringReport.objects.get(pk=response.json()["id"])
    assert report.status == "done", report.error
    assert report.row_count == len(batch)

    reference = frame(0)
    for name in ("x1", "x2"):
        got = report.data_drift["features"][name]
        edges = bins["features"][name]["edges"]
        ref_counts = summary.counts_on(reference[name], edges)
        cur_counts = summary.counts_on(batch[name], edges)
        assert got["psi"]["value"] == pytest.approx(hand_psi(ref_counts, cur_counts), abs=1e-12)
        assert got["psi"]["value"] == pytest.approx(
            rows.data_drift["features"][name]["psi"]["value"], abs=1e-12
        )
        assert got["test"] == "chi2"
        assert got["chi2"]["statistic"] == pytest.approx(hand_chi2(ref_counts, cur_counts))
        # KS from bins: the CDF gap at the edges, a lower bound of the exact statistic.
        gaps = np.abs(
            np.cumsum(ref_counts)[:-1] / len(reference) - np.cumsum(cur_counts)[:-1] / len(batch)
        )
        bound = got["ks_from_bins"]
        assert bound["statistic_lower_bound"] == pytest.approx(gaps.max(), abs=1e-12)
        assert (
            bound["statistic_lower_bound"] <= rows.data_drift["features"][name]["ks"]["statistic"]
        )
        assert "lower bound" in bound["note"] and bound["evaluated_at"] == "bin edges"
        assert got["ks"] is None
    for name in ("colour", "sex"):
        got, row = report.data_drift["features"][name], rows.data_drift["features"][name]
        assert got["psi"]["value"] == pytest.approx(row["psi"]["value"], abs=1e-12)
        assert got["chi2"] == pytest.approx(row["chi2"])
    colour = report.data_drift["features"]["colour"]["psi"]["bins"]
    ref_colours = [b["reference_count"] for b in colour]
    cur_colours = [b["current_count"] for b in colour]
    assert report.data_drift["features"]["colour"]["chi2"]["statistic"] == pytest.approx(
        hand_chi2(ref_colours, cur_colours)
    )
    assert report.prediction_drift["psi"]["value"] == pytest.approx(
        rows.prediction_drift["psi"]["value"], abs=1e-12
    )

    # The shifted feature breaches, the others do not; so do the levels of the row path.
    assert report.data_drift["features"]["x1"]["level"] == "breach"
    assert {n: f["level"] for n, f in report.data_drift["features"].items()} == {
        n: f["level"] for n, f in rows.data_drift["features"].items()
    }
    assert report.performance["metrics"][0]["value"] == pytest.approx(
        rows.performance["metrics"][0]["value"], abs=1e-12
    )
    assert report.fairness_drift is None
    assert report.breached == ["data_drift"]


def test_clean_summary_raises_nothing(api, deployed, member):
    response = post(api, member, deployed, summarise(frame(1), bins_of(api, deployed, member)))
    report = MonitoringReport.objects.get(pk=response.json()["id"])
    assert report.status == "done", report.error
    assert report.levels == {"data_drift": "ok", "prediction_drift": "ok", "performance": "ok"}
    assert report.breached == []


def test_counts_on_the_clients_own_edges_are_compared_with_the_reference_binned_alike(
    api, deployed, member
):
    batch = frame(3)
    body = summarise(batch, bins_of(api, deployed, member), performance=False)
    edges = [-1.0, 0.0, 1.0]
    values = batch.x1.copy()
    values[:25] = np.nan
    body["features"]["x1"] = {
        "edges": edges,
        "counts": summary.counts_on(values, edges),
        "missing": 25,
    }
    report = MonitoringReport.objects.get(pk=post(api, member, deployed, body).json()["id"])
    assert report.status == "done", report.error
    x1 = report.data_drift["features"]["x1"]
    ref_counts = [*summary.counts_on(frame(0).x1, edges), 0]
    cur_counts = [*summary.counts_on(values, edges), 25]
    assert x1["psi"]["edges"] == edges
    assert [b["label"] for b in x1["psi"]["bins"]][-1] == drift.MISSING_LABEL
    assert x1["psi"]["value"] == pytest.approx(hand_psi(ref_counts, cur_counts), abs=1e-12)
    assert x1["chi2"]["statistic"] == pytest.approx(hand_chi2(ref_counts, cur_counts))
    assert x1["missing_share_current"] == pytest.approx(25 / len(batch))
    assert report.performance is None


def test_performance_as_metric_values(api, deployed, member):
    body = summarise(frame(4), bins_of(api, deployed, member), performance=False)
    body["performance"] = {"metrics": {"accuracy": 0.55}, "n": 400}
    report = MonitoringReport.objects.get(pk=post(api, member, deployed, body).json()["id"])
    accuracy = report.performance["metrics"][0]
    assert (accuracy["value"], accuracy["level"], report.performance["n"]) == (0.55, "breach", 400)
    assert "performance" in report.breached


# Mutations of a valid summary, each with the field and the words of the 400 it gets.
def features(b):
    return b["features"]


BAD = [
    ("unknown feature", lambda b: features(b).update(x9={"counts": {"a": 1000}}),
     "features", "unknown feature(s) x9"),
    ("missing feature", lambda b: features(b).pop("x2"),
     "features", "missing feature(s) of the reference: x2"),
    ("negative count", lambda b: features(b)["colour"]["counts"].update(red=-5),
     "features.colour.counts.red", "cannot be negative"),
    ("fractional count", lambda b: features(b)["x1"]["counts"].__setitem__(0, 2.5),
     "features.x1.counts", "whole numbers"),
    ("counts not on the reference's bins", lambda b: features(b)["x1"]["counts"].pop(),
     "features.x1.counts", "9 counts for the reference's 9 edges"),
    ("counts not matching own edges",
     lambda b: features(b)["x1"].update(edges=[0.0, 1.0], counts=[500, 500]),
     "features.x1.counts", "2 counts for 2 edges"),
    ("edges not increasing",
     lambda b: features(b)["x1"].update(edges=[1.0, 0.0], counts=[300, 300, 400]),
     "features.x1.edges", "strictly increasing"),
    ("edges on a categorical feature", lambda b: features(b)["sex"].update(edges=[1.0]),
     "features.sex.edges", "no edges"),
    ("list for a categorical feature", lambda b: features(b)["sex"].update(counts=[500, 500]),
     "features.sex.counts", "map each category"),
    ("counts not adding up", lambda b: features(b)["sex"]["counts"].update(f=1),
     "features.sex", "row_count is 1000"),
    ("empty features", lambda b: b.update(features={}), "features", ""),
    ("no row count", lambda b: b.update(row_count=0), "row_count", ""),
    ("unknown prediction column", lambda b: b["prediction"].update(column="y_score"),
     "prediction.column", "reference has: y_pred"),
    ("confusion with a missing cell", lambda b: b["performance"]["confusion"].pop("tn"),
     "performance.confusion", "tp, fp, fn and tn"),
    ("metrics without n", lambda b: b.update(performance={"metrics": {"accuracy": 0.9}}),
     "performance", "need n"),
    ("unknown metric", lambda b: b.update(performance={"metrics": {"vibes": 1}, "n": 5}),
     "performance.metrics", "unknown metric(s) vibes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_summaries_are_400_and_store_nothing(api, deployed, member, mutate, field, words):
    body = summarise(frame(1), bins_of(api, deployed, member))
    mutate(body)
    response = post(api, member, deployed, body)
    assert response.status_code == 400, response.content
    assert words in str(response.json()[field]), response.json()
    assert not MonitoringReport.objects.exists()
    stored = deployed.monitoring_reference.file.storage.listdir(f"monitoring/{deployed.pk}")[1]
    assert stored == [deployed.monitoring_reference.file.name.rsplit("/", 1)[1]]


def test_infinite_edges_are_refused(deployed):
    # JSON has no infinity, so the API never sees one; the check is for every other caller.
    profile = deployed.monitoring_reference.profile
    body = summarise(frame(1), profile)
    body["features"]["x1"] = {"edges": [0.0, float("inf")], "counts": [100, 200, 700]}
    with pytest.raises(summary.SummaryError, match="finite") as refused:
        summary.validate(body, profile, task="binary")
    assert refused.value.field == "features.x1.edges"


def test_empty_body_is_400(api, deployed, member):
    response = post(api, member, deployed, {})
    assert response.status_code == 400
    assert set(response.json()) >= {"row_count", "features"}


def test_auditor_and_outsider_cannot_send_a_summary(api, deployed, auditor, outsider, member):
    body = summarise(frame(1), bins_of(api, deployed, member))
    assert post(api, auditor, deployed, body).status_code == 403
    response = post(api, outsider, deployed, body)
    assert response.status_code == 400
    assert "not visible" in str(response.json()["model_version"])
    reference = deployed.monitoring_reference
    hidden = api.as_user(outsider).get(f"/api/v1/monitoring/references/{reference.pk}/bins/")
    assert hidden.status_code == 404
    assert not MonitoringReport.objects.exists()


def test_a_summary_costs_a_bounded_number_of_queries(
    api, deployed, member, django_assert_max_num_queries
):
    body = summarise(frame(1), bins_of(api, deployed, member))
    client = api.as_user(member)
    with django_assert_max_num_queries(12):
        client.get(f"/api/v1/monitoring/references/{deployed.monitoring_reference.pk}/bins/")
    with django_assert_max_num_queries(30):  # the upload, not the check (run on commit)
        response = client.post(SUMMARY, {"model_version": deployed.pk, **body}, format="json")
    assert response.status_code == 202


def test_a_reference_registered_before_profiles_gets_one_on_first_use(api, deployed, member):
    reference = deployed.monitoring_reference
    expected = reference.profile
    type(reference).objects.filter(pk=reference.pk).update(profile={})
    assert bins_of(api, deployed, member)["features"] == expected["features"]
    reference.refresh_from_db()
    assert reference.profile == expected


def test_a_summary_is_rechecked_as_a_summary(api, deployed, member, owner):
    first = MonitoringReport.objects.get(
        pk=post(api, member, deployed, summarise(frame(1), bins_of(api, deployed, member))).json()[
            "id"
        ]
    )
    with capture(execute=True):
        again = checks.recheck(first, actor=owner)
    again.refresh_from_db()
    assert (again.source, again.status, again.batch_sha256) == (
        "summary",
        "done",
        first.batch_sha256,
    )
    assert again.data_drift == first.data_drift
