"""The version page shows a fairness audit's groups, verdicts and chart."""

import pytest

from tests.governance.builders import version_with_evidence
from tests.governance.test_fairness_audits import (  # noqa: F401 - fixture used implicitly
    _run_tasks_on_commit,
    audit_csv,
    upload,
)

pytestmark = pytest.mark.django_db


def test_version_page_shows_fairness_groups_verdicts_and_chart(client, api, project, owner):
    version, _ = version_with_evidence(project, owner)
    client.force_login(owner)
    assert "No fairness audit." in client.get(f"/versions/{version.pk}/").content.decode()
    upload(api.as_user(owner), version, audit_csv(fair=False))
    page = client.get(f"/versions/{version.pk}/").content.decode()
    assert "No fairness audit." not in page
    assert "By sex" in page and "<svg" in page
    assert "fails the four-fifths rule" in page
