"""Retirement: deprecated → retired with a reason and a signature; retired is final, and the
version's records stay readable."""

import pytest
from django.core.exceptions import ValidationError

from governance.models import MonitoringReport, Signature, TransitionRequest
from governance.monitoring import checks
from governance.policy_rules import DEFAULT_POLICIES
from tests.governance.test_monitoring import (
    csv_file,
    deploy,
    frame,
    minimal_project,
    move,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def retired(owner, member, reviewer, compliance, auditor, django_capture_on_commit_callbacks):
    """A version that was in production, was monitored, then deprecated and retired."""
    shop = minimal_project(owner, member, reviewer, compliance, auditor)
    version = deploy(shop, owner, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        checks.submit_batch(version, csv_file(frame(1)), actor=owner)
    move(version, "deprecated", owner=owner, reviewer=reviewer)
    return move(version, "retired", owner=owner, reviewer=reviewer)


def test_no_shipped_policy_has_a_rule_leaving_retired():
    for tier, definition in DEFAULT_POLICIES.items():
        assert "retired" in definition["terminal_stages"], tier
        assert not [t for t in definition["transitions"] if t["from"] == "retired"], tier
        sources = {t["from"] for t in definition["transitions"] if t["to"] == "retired"}
        assert sources == {"deprecated", "suspended", "rejected"}, tier


def test_high_risk_retirement_needs_a_compliance_officer():
    rule = next(
        t
        for t in DEFAULT_POLICIES["high"]["transitions"]
        if (t["from"], t["to"]) == ("deprecated", "retired")
    )
    assert rule["approvals"]["compliance_officer_required"] is True


def test_deprecated_version_is_retired_with_a_reason_and_a_signature(retired, reviewer):
    assert retired.stage == "retired"
    request = TransitionRequest.objects.get(model_version=retired, to_stage="retired")
    assert request.from_stage == "deprecated"
    assert request.justification == "to retired"
    signature = Signature.objects.get(request=request)
    assert signature.signer == reviewer
    assert signature.meaning == "approved"
    assert signature.printed_name == "Rory Tester"


@pytest.mark.parametrize("stage", ["production", "staging", "development", "deprecated"])
def test_retired_version_can_never_return(api, retired, owner, stage):
    response = api.as_user(owner).post(
        f"/api/v1/model-versions/{retired.pk}/transitions/",
        {"to_stage": stage, "justification": "bring it back"},
        format="json",
    )
    assert response.status_code == 409
    assert "does not allow retired" in str(response.json())
    retired.refresh_from_db()
    assert retired.stage == "retired"


def test_retired_version_takes_no_more_monitoring_batches(retired, owner):
    with pytest.raises(ValidationError, match="only production and staging"):
        checks.submit_batch(retired, csv_file(frame(2)), actor=owner)


def test_retired_versions_records_stay_readable(api, retired, auditor):
    client = api.as_user(auditor)
    assert client.get(f"/api/v1/model-versions/{retired.pk}/").json()["stage"] == "retired"
    requests = client.get(f"/api/v1/transition-requests/?model_version={retired.pk}").json()
    assert requests["count"] >= 5
    report = MonitoringReport.objects.get(model_version=retired)
    assert client.get(f"/api/v1/monitoring/reports/{report.pk}/").status_code == 200
