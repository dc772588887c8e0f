"""`/api/v1/monitoring/...`: uploads answer 202 and are checked in a task; lists are scoped and
cost a constant number of queries; outsiders see nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import MonitoringReport, MonitoringSchedule, RetrainingTicket
from governance.monitoring import checks, schedules
from governance.tasks import run_scheduled_monitoring_task
from tests.governance.test_monitoring import (
    csv_file,
    deploy,
    frame,
    minimal_project,
    parquet_file,
    validated_version,
)

pytestmark = pytest.mark.django_db
_capture = None
REPORTS = "/api/v1/monitoring/reports/"
REFERENCES = "/api/v1/monitoring/references/"
TICKETS = "/api/v1/monitoring/retraining-tickets/"


@pytest.fixture
def shop(owner, member, reviewer, compliance, auditor):
    return minimal_project(owner, member, reviewer, compliance, auditor)


@pytest.fixture
def deployed(shop, owner, reviewer):
    return deploy(shop, owner, reviewer)


@pytest.fixture(autouse=True)
def _tasks_on_commit(django_capture_on_commit_callbacks):
    """The check is queued when the upload's transaction commits; run it then."""
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield
    _capture = None


def upload(client, url, version, file):
    with _capture(execute=True):
        return client.post(url, {"model_version": version.pk, "file": file}, format="multipart")


def submit(version, data, *, actor):
    with _capture(execute=True):
        return checks.submit_batch(version, csv_file(data), actor=actor)


def test_batch_upload_is_accepted_and_checked_in_a_task(api, deployed, member):
    response = upload(api.as_user(member), REPORTS, deployed, parquet_file(frame(1, shift=1.0)))
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    report = MonitoringReport.objects.get(pk=response.json()["id"])
    assert report.status == "done"
    assert report.levels["data_drift"] == "breach"
    detail = api.get(f"{REPORTS}{report.pk}/").json()
    assert detail["breaches"][0]["kind"] == "data_drift"
    assert detail["data_drift"]["features"]["x1"]["level"] == "breach"


def test_upload_for_a_version_not_in_production_or_staging_is_400(api, shop, owner):
    version = validated_version(shop, owner)
    response = upload(api.as_user(owner), REPORTS, version, csv_file(frame(1)))
    assert response.status_code == 400
    assert "only production and staging" in str(response.json()["model_version"])


def test_unreadable_file_and_missing_columns_are_400(api, deployed, owner):
    client = api.as_user(owner)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = upload(client, REPORTS, deployed, SimpleUploadedFile("x.csv", b"\x00\x01\x02"))
    assert response.status_code == 400
    response = upload(client, REPORTS, deployed, csv_file(frame(1).drop(columns=["x2"])))
    assert response.status_code == 400
    assert "x2" in str(response.json()["file"])
    assert not MonitoringReport.objects.exists()


def test_reference_upload_once_per_version(api, shop, owner):
    version = validated_version(shop, owner)
    client = api.as_user(owner)
    response = upload(client, REFERENCES, version, csv_file(frame(0)))
    assert response.status_code == 201, response.content
    assert response.json()["row_count"] == 1000
    again = upload(client, REFERENCES, version, csv_file(frame(0)))
    assert again.status_code == 400


def test_auditor_cannot_upload_a_batch(api, deployed, auditor):
    response = upload(api.as_user(auditor), REPORTS, deployed, csv_file(frame(1)))
    assert response.status_code == 403


def test_outsider_gets_404_for_report_and_empty_lists(api, deployed, owner, outsider):
    report = submit(deployed, frame(1), actor=owner)
    client = api.as_user(outsider)
    assert client.get(f"{REPORTS}{report.pk}/").status_code == 404
    assert client.get(REPORTS).json()["count"] == 0
    assert client.get(REFERENCES).json()["count"] == 0
    response = upload(client, REPORTS, deployed, csv_file(frame(1)))
    assert response.status_code == 400  # the version does not exist for them
    assert "not visible" in str(response.json()["model_version"])


def test_report_list_costs_a_constant_number_of_queries(
    api, deployed, owner, django_assert_max_num_queries
):
    for seed in range(4):
        submit(deployed, frame(10 + seed, shift=1.0), actor=owner)
    client = api.as_user(owner)
    with django_assert_max_num_queries(8):
        response = client.get(REPORTS)
    assert response.json()["count"] == 4
    with django_assert_max_num_queries(8):
        response = client.get(TICKETS)
    assert response.json()["count"] == RetrainingTicket.objects.count() == 4
    with django_assert_max_num_queries(8):
        assert client.get(REFERENCES).json()["count"] == 1


def test_scheduled_task_rechecks_the_latest_batch_of_due_models(deployed, owner):
    first = submit(deployed, frame(1), actor=owner)
    latest = submit(deployed, frame(2), actor=owner)
    schedule = MonitoringSchedule.objects.create(
        registered_model=deployed.registered_model, interval_hours=24
    )
    with _capture(execute=True):
        assert run_scheduled_monitoring_task() == {"queued": 1}
    recheck = MonitoringReport.objects.filter(scheduled=True).get()
    assert recheck.batch_sha256 == latest.batch_sha256 != first.batch_sha256
    assert recheck.status == "done"
    # Not due again until the interval has passed.
    assert run_scheduled_monitoring_task() == {"queued": 0}
    schedule.refresh_from_db()
    with _capture(execute=True):
        assert schedules.run_due(now=schedule.last_run + timedelta(hours=24)) == 1
    assert schedules.run_due(now=timezone.now()) == 0


def test_beat_schedule_runs_the_monitoring_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["scheduled-monitoring"]
    assert entry["task"] == run_scheduled_monitoring_task.name


SCHEDULES = "/api/v1/monitoring/schedules/"


def test_project_manager_sets_a_models_schedule(api, deployed, owner, member):
    body = {"registered_model": deployed.registered_model_id, "interval_hours": 12}
    assert api.as_user(member).post(SCHEDULES, body, format="json").status_code == 403
    response = api.as_user(owner).post(SCHEDULES, body, format="json")
    assert response.status_code == 201, response.content
    assert api.as_user(owner).post(SCHEDULES, body, format="json").status_code == 400
    schedule_id = response.json()["id"]
    response = api.as_user(owner).patch(
        f"{SCHEDULES}{schedule_id}/", {"interval_hours": 6}, format="json"
    )
    assert response.status_code == 200
    assert MonitoringSchedule.objects.get().interval_hours == 6
    bad = api.as_user(owner).patch(f"{SCHEDULES}{schedule_id}/", {"interval_hours": 0})
    assert bad.status_code == 400


def test_outsider_gets_404_for_a_schedule(api, deployed, outsider, django_assert_max_num_queries):
    schedule = MonitoringSchedule.objects.create(
        registered_model=deployed.registered_model, interval_hours=24
    )
    client = api.as_user(outsider)
    assert client.get(f"{SCHEDULES}{schedule.pk}/").status_code == 404
    with django_assert_max_num_queries(8):
        assert client.get(SCHEDULES).json()["count"] == 0
