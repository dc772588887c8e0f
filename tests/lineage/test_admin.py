"""Received OpenLineage events in the admin: read-only, filtered, scoped by project rights."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from lineage.models import ReceivedEvent
from registry.choices import ProjectRight
from tests import factories
from tests.factories import Role
from tests.lineage.test_openlineage import ORDERS, event, post

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:lineage_receivedevent_changelist")


@pytest.fixture
def received(api, project, other_project, member, outsider):
    """Two runs reported in `project` (START and COMPLETE each), one in `other_project`."""
    client = api.as_user(member)
    for _ in range(2):
        run_id = str(uuid.uuid4())
        body = [event("START", run_id, inputs=[ORDERS]), event("COMPLETE", run_id, minute=3)]
        assert post(client, body, "/api/v1/lineage/batch").status_code == 201
    hidden = event("START", namespace="secret")
    assert post(api.as_user(outsider), hidden).status_code == 201
    return ReceivedEvent.objects.all()


@pytest.fixture
def browser(project, owner):
    staff = factories.user("stella", role=Role.AUDITOR, is_staff=True)
    factories.grant(project, staff, ProjectRight.VIEW)
    # A second visible project, so that the project filter has a choice to offer.
    factories.grant(factories.project(owner, key="fraud"), staff, ProjectRight.VIEW)
    browser = Client()
    browser.force_login(staff)
    return browser


def test_changelist_lists_the_events_of_visible_projects_only(
    browser, received, project, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):
        response = browser.get(CHANGELIST)
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert len(rows) == 4
    assert {row.run.project for row in rows} == {project}
    assert "secret" not in response.content.decode()  # not in the rows, nor in the filters


def test_changelist_filters_by_event_type_project_and_run_status(browser, received, project):
    def count(**params):
        return browser.get(CHANGELIST, params).context["cl"].result_count

    assert count(event_type__exact="COMPLETE") == 2
    assert count(event_type__exact="START") == 2
    assert count(run__project__id__exact=project.pk) == 4
    assert count(run__status__exact="completed") == 4
    page = browser.get(CHANGELIST)
    filters = [spec.title for spec in page.context["cl"].filter_specs]
    assert filters == ["event type", "project", "status", "event time", "received at"]
    projects = [
        c["display"] for c in page.context["cl"].filter_specs[1].choices(page.context["cl"])
    ]
    assert projects == ["All", "credit", "fraud"]


def test_an_event_can_be_read_but_not_added_changed_or_deleted(browser, received):
    shown = received.filter(event_type="START").first()
    change = reverse("admin:lineage_receivedevent_change", args=[shown.pk])
    page = browser.get(change)
    assert page.status_code == 200
    body = page.content.decode()
    assert "shop.public.orders" in body  # the payload, as received
    assert 'name="_save"' not in body
    assert browser.post(change, {"event_type": "FAIL"}).status_code == 403
    assert browser.get(reverse("admin:lineage_receivedevent_add")).status_code == 403
    delete = reverse("admin:lineage_receivedevent_delete", args=[shown.pk])
    assert browser.get(delete).status_code == 403
    assert browser.post(delete, {"post": "yes"}).status_code == 403
    shown.refresh_from_db()
    assert shown.event_type == "START"
    assert ReceivedEvent.objects.count() == 5


def test_changelist_offers_no_bulk_delete(browser, received):
    response = browser.get(CHANGELIST)
    assert "delete_selected" not in response.content.decode()
    ids = [str(pk) for pk in received.values_list("pk", flat=True)]
    browser.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert ReceivedEvent.objects.count() == 5


def test_an_event_of_an_invisible_project_reads_like_a_missing_one(browser, received):
    hidden = received.get(run__project__key="secret")
    response = browser.get(reverse("admin:lineage_receivedevent_change", args=[hidden.pk]))
    missing = browser.get(reverse("admin:lineage_receivedevent_change", args=[10**9]))
    assert (response.status_code, response["Location"]) == (302, missing["Location"])
