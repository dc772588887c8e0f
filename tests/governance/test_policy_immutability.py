"""A policy version in use is immutable: once approved, retired or bound to a project, nothing
that defines it changes — not through save(), a queryset update, the admin site or raw SQL —
and it is never deleted. A change is a new version that a compliance officer signs before a
project moves to it."""

import copy

import pytest
from django.contrib.admin import AdminSite, ModelAdmin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from governance import policies, transitions
from governance.choices import AuditAction, PolicyStatus
from governance.errors import Conflict
from governance.models import (
    AuditEvent,
    LifecyclePolicy,
    PolicyImmutable,
    ProjectPolicy,
    Signature,
)
from governance.policy_rules import default_definition
from governance.signing import digest, policy_record
from registry.choices import ProjectRight
from tests import factories
from tests.factories import PASSWORD, Role
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db


@pytest.fixture
def cora(project):
    """A second compliance officer, who may manage the project: she signs what Casey writes."""
    officer = factories.user("cora", role=Role.COMPLIANCE_OFFICER)
    factories.grant(project, officer, ProjectRight.VIEW, ProjectRight.MANAGE)
    return officer


def propose(author, definition=None, *, name="credit-strict"):
    return policies.propose_policy_version(
        actor=author,
        name=name,
        risk_tier="high",
        definition=definition or default_definition("high"),
    )


@pytest.fixture
def approved(compliance, cora):
    policy = propose(compliance)
    policies.approve_policy_version(policy, signer=cora, password=PASSWORD)
    policy.refresh_from_db()
    return policy


def stored(policy) -> dict:
    """Every column of the policy version as the database holds it."""
    return LifecyclePolicy.objects.filter(pk=policy.pk).values().get()


def stricter(definition: dict) -> dict:
    """The definition with production needing three approvals instead of what it said."""
    changed = copy.deepcopy(definition)
    for rule in changed["transitions"]:
        if rule["to"] == "production":
            rule["approvals"]["count"] = 3
    return changed


def _add_stage(d):
    d["stages"].append("quarantine")


def _drop_transition(d):
    d["transitions"].pop()


def _to_production(d) -> dict:
    return next(rule for rule in d["transitions"] if rule["to"] == "production")


def _drop_gate(d):
    _to_production(d)["checks"].remove("fairness_audit_passed")


def _fewer_approvals(d):
    _to_production(d)["approvals"]["count"] = 1


def _looser_settings(d):
    d["settings"]["baseline_margin"] = 0.0


DEFINITION_CHANGES = [_add_stage, _drop_transition, _drop_gate, _fewer_approvals, _looser_settings]


def other_values(policy) -> dict:
    """A different value for each column that defines a version."""
    return {
        "name": "credit-lenient",
        "version": policy.version + 7,
        "risk_tier": "minimal",
        "description": "rewritten",
        "is_default": not policy.is_default,
        "created_by": factories.user("mallory"),
        "created_at": timezone.now(),
        "approved_at": timezone.now(),
    }


# --- save() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "version",
        "risk_tier",
        "description",
        "is_default",
        "created_by",
        "created_at",
        "approved_at",
    ],
)
def test_approved_policy_field_cannot_change_on_save(approved, field):
    before = stored(approved)
    setattr(approved, field, other_values(approved)[field])
    with pytest.raises(PolicyImmutable, match="credit-strict v1 is approved: its .* cannot change"):
        approved.save()
    assert stored(approved) == before


@pytest.mark.parametrize("change", DEFINITION_CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_approved_policy_definition_cannot_change_on_save(approved, change):
    before = stored(approved)
    change(approved.definition)
    with pytest.raises(PolicyImmutable, match="its definition cannot change"):
        approved.save()
    assert stored(approved) == before


def test_approved_policy_never_goes_back_to_draft(approved):
    """The reviewer's way round: draft, change, approve again. The first step is refused."""
    approved.status = PolicyStatus.DRAFT
    with pytest.raises(PolicyImmutable, match="never goes back to draft"):
        approved.save()
    approved.status = PolicyStatus.DRAFT
    with pytest.raises(PolicyImmutable, match="never goes back to draft"):
        approved.save(update_fields=["status"])
    assert stored(approved)["status"] == PolicyStatus.APPROVED


def test_retired_policy_stays_retired_and_unchanged(approved):
    approved.status = PolicyStatus.RETIRED
    approved.save()
    for status in (PolicyStatus.APPROVED, PolicyStatus.DRAFT):
        approved.status = status
        with pytest.raises(PolicyImmutable, match="is retired: it cannot become"):
            approved.save()
    approved.refresh_from_db()
    approved.definition = stricter(approved.definition)
    with pytest.raises(PolicyImmutable, match="is retired: its definition cannot change"):
        approved.save()
    assert stored(approved)["status"] == PolicyStatus.RETIRED


def test_draft_policy_can_still_be_edited(compliance):
    draft = propose(compliance)
    draft.definition = stricter(draft.definition)
    draft.description = "three approvals for production"
    draft.save()
    assert stored(draft)["description"] == "three approvals for production"


def test_draft_bound_to_a_project_cannot_change(compliance, project):
    draft = propose(compliance)
    ProjectPolicy.objects.create(project=project, policy=draft)  # bypassing bind_policy
    draft.definition = stricter(draft.definition)
    with pytest.raises(PolicyImmutable, match="governs a project: its definition cannot change"):
        draft.save()


def test_draft_is_not_approved_without_a_compliance_officers_signature(compliance):
    draft = propose(compliance)
    draft.status = PolicyStatus.APPROVED
    with pytest.raises(PolicyImmutable, match="approved only by a compliance officer's signature"):
        draft.save()
    with pytest.raises(PolicyImmutable, match="approved only by a compliance officer's signature"):
        LifecyclePolicy.objects.filter(pk=draft.pk).update(status=PolicyStatus.APPROVED)
    assert stored(draft)["status"] == PolicyStatus.DRAFT


def test_signature_approves_only_the_version_it_signed(compliance, cora):
    """A signature on the draft as it is does not approve it with a changed definition."""
    draft = propose(compliance)
    text, sha = digest(policy_record(draft))
    Signature.objects.create(
        policy=draft,
        signer=cora,
        printed_name="Cora Tester",
        role=Role.COMPLIANCE_OFFICER,
        signed_at=timezone.now(),
        meaning="approved",
        record_sha256=sha,
        signed_record=text,
    )
    signed_definition = draft.definition
    draft.definition = stricter(signed_definition)
    draft.status = PolicyStatus.APPROVED
    with pytest.raises(PolicyImmutable, match="approved only by a compliance officer's signature"):
        draft.save()
    draft.definition = signed_definition
    draft.save()
    assert stored(draft)["status"] == PolicyStatus.APPROVED


# --- queryset update and bulk_update --------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"definition": {"stages": ["anything"]}},
        {"risk_tier": "minimal"},
        {"name": "credit-lenient"},
        {"status": PolicyStatus.DRAFT},
        {"is_default": True},
    ],
    ids=lambda v: next(iter(v)),
)
def test_queryset_update_of_an_approved_policy_is_refused(approved, values):
    before = stored(approved)
    with pytest.raises(PolicyImmutable, match="credit-strict v1 is approved"):
        LifecyclePolicy.objects.filter(pk=approved.pk).update(**values)
    assert stored(approved) == before


def test_queryset_update_of_many_policies_is_refused_when_one_is_approved(approved, compliance):
    draft = propose(compliance, name="credit-draft")
    with pytest.raises(PolicyImmutable, match="credit-strict v1 is approved"):
        LifecyclePolicy.objects.filter(pk__in=[approved.pk, draft.pk]).update(description="x")
    assert stored(draft)["description"] == ""
    LifecyclePolicy.objects.filter(pk=draft.pk).update(description="still a draft")
    assert stored(draft)["description"] == "still a draft"


def test_bulk_update_of_an_approved_policy_is_refused(approved):
    before = stored(approved)
    approved.definition = stricter(approved.definition)
    with pytest.raises(PolicyImmutable, match="its definition cannot change"):
        LifecyclePolicy.objects.bulk_update([approved], ["definition"])
    assert stored(approved) == before


def test_approved_policy_can_be_retired(approved, compliance, cora):
    LifecyclePolicy.objects.filter(pk=approved.pk).update(status=PolicyStatus.RETIRED)
    assert stored(approved)["status"] == PolicyStatus.RETIRED
    other = propose(compliance, name="credit-other")
    policies.approve_policy_version(other, signer=cora, password=PASSWORD)
    other.refresh_from_db()
    other.status = PolicyStatus.RETIRED
    other.save()
    assert stored(other)["status"] == PolicyStatus.RETIRED


# --- delete -------------------------------------------------------------------------------


def test_approved_policy_is_never_deleted(approved):
    with pytest.raises(PolicyImmutable, match="credit-strict v1 is approved: it is never deleted"):
        approved.delete()
    with pytest.raises(PolicyImmutable, match="is approved: it is never deleted"):
        LifecyclePolicy.objects.filter(pk=approved.pk).delete()
    assert LifecyclePolicy.objects.filter(pk=approved.pk).exists()


def test_policy_bound_to_a_project_is_never_deleted(compliance, project):
    draft = propose(compliance)
    ProjectPolicy.objects.create(project=project, policy=draft)
    with pytest.raises(PolicyImmutable, match="governs a project: it is never deleted"):
        draft.delete()
    with pytest.raises(PolicyImmutable, match="governs a project: it is never deleted"):
        LifecyclePolicy.objects.filter(name="credit-strict").delete()
    assert LifecyclePolicy.objects.filter(pk=draft.pk).exists()


def test_unused_draft_can_be_deleted(compliance):
    draft = propose(compliance)
    draft.delete()
    assert not LifecyclePolicy.objects.filter(pk=draft.pk).exists()


# --- the admin site -----------------------------------------------------------------------


def test_admin_site_offers_no_way_to_change_or_delete_a_policy(approved):
    superuser = factories.user("root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(superuser)
    before = stored(approved)
    base = f"/admin/governance/lifecyclepolicy/{approved.pk}"
    changed = browser.post(f"{base}/change/", {"name": "x", "definition": "{}", "status": "draft"})
    deleted = browser.post(f"{base}/delete/", {"post": "yes"})
    assert changed.status_code == 404 and deleted.status_code == 404
    assert stored(approved) == before


def test_an_admin_page_for_policies_would_show_the_refusal(approved, rf):
    """Were a plain admin page registered for policies, its form would refuse the change
    with the reason (the model's clean()), and write nothing."""
    model_admin = ModelAdmin(LifecyclePolicy, AdminSite(name="probe"))
    request = rf.post(
        f"/probe/governance/lifecyclepolicy/{approved.pk}/change/",
        {
            "name": approved.name,
            "version": approved.version,
            "risk_tier": "minimal",
            "description": approved.description,
            "definition": '{"stages": ["development"]}',
            "status": PolicyStatus.DRAFT,
        },
    )
    request.user = factories.user("root", is_staff=True, is_superuser=True)
    request._dont_enforce_csrf_checks = True
    request.session = {}
    request._messages = FallbackStorage(request)
    before = stored(approved)
    response = model_admin.change_view(request, str(approved.pk))
    assert response.status_code == 200  # the form again, with its error
    errors = response.context_data["adminform"].form.non_field_errors()
    assert any("credit-strict v1 is approved" in error for error in errors)
    assert stored(approved) == before


# --- raw SQL (the database's own triggers) --------------------------------------------------

RAW_UPDATES = {
    "definition": "UPDATE governance_lifecyclepolicy SET definition = %s WHERE id = %s",
    "risk_tier": "UPDATE governance_lifecyclepolicy SET risk_tier = %s WHERE id = %s",
    "name": "UPDATE governance_lifecyclepolicy SET name = %s WHERE id = %s",
    "back_to_draft": "UPDATE governance_lifecyclepolicy SET status = %s WHERE id = %s",
    "approved_at": "UPDATE governance_lifecyclepolicy SET approved_at = NULL WHERE id = %s",
}
RAW_VALUES = {
    "definition": '{"stages": ["development"]}',
    "risk_tier": "minimal",
    "name": "credit-lenient",
    "back_to_draft": "draft",
}


def raw(sql, params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize("column", list(RAW_UPDATES))
def test_database_refuses_raw_update_of_an_approved_policy(approved, column):
    before = stored(approved)
    params = [RAW_VALUES[column], approved.pk] if column in RAW_VALUES else [approved.pk]
    with pytest.raises(IntegrityError, match="UPDATE refused"):
        raw(RAW_UPDATES[column], params)
    assert stored(approved) == before


def test_database_refuses_raw_changes_to_a_retired_policy(approved):
    raw("UPDATE governance_lifecyclepolicy SET status = 'retired' WHERE id = %s", [approved.pk])
    with pytest.raises(IntegrityError, match="UPDATE refused"):
        raw(
            "UPDATE governance_lifecyclepolicy SET status = 'approved' WHERE id = %s", [approved.pk]
        )
    with pytest.raises(IntegrityError, match="UPDATE refused"):
        raw("UPDATE governance_lifecyclepolicy SET description = 'x' WHERE id = %s", [approved.pk])
    assert stored(approved)["status"] == PolicyStatus.RETIRED


@pytest.mark.parametrize("status", [PolicyStatus.APPROVED, PolicyStatus.RETIRED])
def test_database_refuses_raw_delete_of_an_approved_or_retired_policy(approved, status):
    raw("UPDATE governance_lifecyclepolicy SET status = %s WHERE id = %s", [status, approved.pk])
    with pytest.raises(IntegrityError, match="DELETE refused"):
        raw("DELETE FROM governance_lifecyclepolicy WHERE id = %s", [approved.pk])
    assert LifecyclePolicy.objects.filter(pk=approved.pk).exists()


def test_database_lets_drafts_change_and_approved_versions_retire(approved, compliance):
    draft = propose(compliance, name="credit-draft")
    raw("UPDATE governance_lifecyclepolicy SET description = 'edited' WHERE id = %s", [draft.pk])
    raw("UPDATE governance_lifecyclepolicy SET status = 'retired' WHERE id = %s", [approved.pk])
    assert stored(draft)["description"] == "edited"
    assert stored(approved)["status"] == PolicyStatus.RETIRED


# --- the legitimate way: a new version, signed, then the project moves -----------------------


def test_policy_change_is_a_new_signed_version_the_project_moves_to(
    project, owner, reviewer, compliance, cora, approved
):
    policies.bind_policy(project, approved, actor=cora)
    v1_before = stored(approved)
    v2 = propose(compliance, stricter(approved.definition))
    assert (v2.name, v2.version, v2.status) == ("credit-strict", 2, PolicyStatus.DRAFT)

    with pytest.raises(Conflict, match="not approved by a compliance officer yet"):
        policies.bind_policy(project, v2, actor=cora)
    policies.approve_policy_version(v2, signer=cora, password=PASSWORD)
    policies.bind_policy(project, v2, actor=cora, reason="production needs three approvals")

    project.refresh_from_db()
    assert project.policy_binding.policy == v2
    assert stored(approved) == v1_before  # the old version is kept exactly as it was signed
    [signature] = Signature.objects.filter(policy=v2)
    assert signature.signer == cora and signature.meaning == "approved"
    assert signature.record_sha256 == digest(policy_record(v2))[1]
    # New requests are judged under the new version.
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="ready"
    )
    assert request.policy == v2
    actions = list(
        AuditEvent.objects.filter(
            object_type__in=["governance.lifecyclepolicy", "governance.projectpolicy"],
            action__startswith="policy.",
        )
        .order_by("sequence")
        .values_list("action", "object_id")
    )
    assert actions[-3:] == [
        (AuditAction.POLICY_CREATED, str(v2.pk)),
        (AuditAction.POLICY_APPROVED, str(v2.pk)),
        (AuditAction.POLICY_BOUND, str(project.policy_binding.pk)),
    ]
