"""The audit-trail list filters by actor, by object (type and id), by action and by a time
range; each filter returns exactly the readable events it names, no more and no fewer."""

import pytest
from django.db.models import Q

from governance import transitions
from governance.models import AuditEvent, TransitionRequest
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db
URL = "/api/v1/audit-events/"


@pytest.fixture
def trail(project, owner, reviewer):
    """Two requests by the owner; the reviewer approves the first (which applies it)."""
    made = []
    for _ in range(2):
        version, _ = version_with_evidence(project, owner)
        made.append(
            transitions.request_transition(version, "validation", actor=owner, justification="x")
        )
    transitions.sign(made[0], signer=reviewer, meaning="approved", password=PASSWORD)
    return made


def readable(project):
    """The events an auditor assigned to `project` reads: its own and those of no project."""
    return AuditEvent.objects.filter(Q(project_id=project.pk) | Q(project_id__isnull=True))


def listed(client, **filters) -> list[int]:
    body = client.get(URL, {**filters, "page_size": 1000}).json()
    assert body["count"] == len(body["results"])  # one page holds them all
    return sorted(event["sequence"] for event in body["results"])


def sequences(events) -> list[int]:
    return sorted(events.values_list("sequence", flat=True))


def test_filter_by_actor(api, project, trail, owner, reviewer, auditor):
    client = api.as_user(auditor)
    everything = listed(client)
    for person in (owner, reviewer):
        expected = sequences(readable(project).filter(actor_id=person.pk))
        assert expected and len(expected) < len(everything)
        assert listed(client, actor=person.pk) == expected
    assert listed(client, actor=auditor.pk) == []


def test_filter_by_object_type_and_id(api, project, trail, auditor):
    client = api.as_user(auditor)
    first, second = trail
    kind = "governance.transitionrequest"
    both = listed(client, object_type=kind)
    of_first = listed(client, object_type=kind, object_id=first.pk)
    of_second = listed(client, object_type=kind, object_id=second.pk)
    assert of_first == sequences(readable(project).filter(object_type=kind, object_id=first.pk))
    assert of_first and of_second and not set(of_first) & set(of_second)
    assert sorted(of_first + of_second) == both
    # The first request was requested, evaluated and applied; the second only requested.
    actions = {e.action for e in AuditEvent.objects.filter(sequence__in=of_first)}
    assert {"transition.requested", "transition.applied"} <= actions
    assert listed(client, object_type="registry.project", object_id=first.pk) != of_first


def test_filter_by_action(api, project, trail, reviewer, auditor):
    client = api.as_user(auditor)
    signed = listed(client, action="signature.recorded")
    assert signed == sequences(readable(project).filter(action="signature.recorded"))
    assert len(signed) == 1
    assert AuditEvent.objects.get(sequence=signed[0]).actor_id == reviewer.pk
    requested = listed(client, action="transition.requested")
    assert len(requested) == TransitionRequest.objects.count() == 2


def test_filter_by_time_range(api, project, trail, auditor):
    client = api.as_user(auditor)
    events = list(readable(project).order_by("occurred_at", "sequence"))
    # A boundary that splits the trail: the first time later than the earliest event.
    boundary = next(e.occurred_at for e in events if e.occurred_at > events[0].occurred_at)
    since = listed(client, since=boundary.isoformat())
    until = listed(client, until=boundary.isoformat())
    assert since == sorted(e.sequence for e in events if e.occurred_at >= boundary)
    assert until == sorted(e.sequence for e in events if e.occurred_at < boundary)
    assert since and until and sorted(since + until) == listed(client)
    window = listed(client, since=events[0].occurred_at.isoformat(), until=boundary.isoformat())
    assert window == until


def test_filters_combine(api, project, trail, owner, reviewer, auditor):
    client = api.as_user(auditor)
    first = trail[0]
    kind = "governance.transitionrequest"
    by_owner = listed(client, actor=owner.pk, object_type=kind, object_id=first.pk)
    by_reviewer = listed(client, actor=reviewer.pk, object_type=kind, object_id=first.pk)
    assert by_owner == sequences(
        readable(project).filter(actor_id=owner.pk, object_type=kind, object_id=first.pk)
    )
    assert by_owner and by_reviewer and not set(by_owner) & set(by_reviewer)
