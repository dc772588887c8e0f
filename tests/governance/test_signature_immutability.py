"""Electronic signatures are never edited or deleted (21 CFR 11.10(e), 11.70): not through an
instance, a queryset, a related manager or the base manager, and not in raw SQL either, where
database triggers refuse it. A rejection cannot become an approval the gate would count."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from governance import transitions
from governance.models import AuditEvent, Signature, SignatureAltered
from governance.monitoring import plans
from governance.signature_triggers import REFUSAL
from tests.factories import PASSWORD
from tests.governance.builders import (
    bind_changed_policy,
    require_two_approvals,
    version_with_evidence,
)

pytestmark = pytest.mark.django_db
TABLE = Signature._meta.db_table
PLANS = "/api/v1/change-control-plans/"


@pytest.fixture
def decided(project, owner, compliance, reviewer, second_reviewer):
    """A request needing two approvals: one reviewer approved it, the other rejected it."""
    bind_changed_policy(
        project,
        proposer=owner,
        compliance=compliance,
        name="two-reviewers",
        change=require_two_approvals,
    )
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, "validation", actor=owner, justification="ready for validation"
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    transitions.sign(
        request, signer=second_reviewer, meaning="rejected", password=PASSWORD, comment="no"
    )
    request.refresh_from_db()
    return request


@pytest.fixture
def rejection(decided, second_reviewer):
    return Signature.objects.get(request=decided, signer=second_reviewer)


@pytest.fixture
def plan(project, owner, compliance):
    draft = plans.propose_plan(
        project,
        actor=owner,
        description="retrain monthly",
        allowed_modifications={"same_framework": True},
        protocol={"checks": ["beats_baseline"]},
        impact_assessment="unchanged",
    )
    return plans.approve_plan(draft, signer=compliance, password=PASSWORD)


@pytest.fixture
def signed(request, decided, plan):
    """One signature of each kind of record: a transition request, a plan, a policy."""
    return {
        "request": Signature.objects.get(request=decided, meaning="rejected"),
        "plan": Signature.objects.get(plan=plan),
        "policy": Signature.objects.get(policy=decided.policy),
    }[request.param]


KINDS = pytest.mark.parametrize("signed", ["request", "plan", "policy"], indirect=True)

# The ways the ORM offers to reach the signature rows in bulk.
MANAGERS = {
    "objects": lambda signature: Signature.objects.filter(pk=signature.pk),
    "base manager": lambda signature: Signature._base_manager.filter(pk=signature.pk),
    "related manager": lambda signature: signature.request.signatures.filter(pk=signature.pk),
}


def stored() -> list[dict]:
    return list(Signature.objects.order_by("pk").values())


def raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def truncate():
    # The test's rows are not committed: PostgreSQL will not TRUNCATE a table with foreign
    # key checks still deferred, so they are run first (as a commit would).
    connection.check_constraints()
    raw(f"TRUNCATE {TABLE}")


# --- the ORM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("manager", list(MANAGERS))
def test_queryset_update_of_a_signature_is_refused(rejection, manager):
    before = stored()
    with pytest.raises(SignatureAltered, match="never edited"):
        MANAGERS[manager](rejection).update(meaning="approved")
    assert stored() == before


@pytest.mark.parametrize("manager", list(MANAGERS))
def test_queryset_delete_of_a_signature_is_refused(rejection, manager):
    before = stored()
    with pytest.raises(SignatureAltered, match="never deleted"):
        MANAGERS[manager](rejection).delete()
    assert stored() == before


def test_bulk_update_of_signatures_is_refused(rejection):
    before = stored()
    rejection.meaning = "approved"
    for manager in (Signature.objects, Signature._base_manager):
        with pytest.raises(SignatureAltered, match="never edited"):
            manager.bulk_update([rejection], ["meaning"])
    assert stored() == before


def test_bulk_create_may_not_overwrite_a_stored_signature(rejection):
    before = stored()
    rejection.meaning = "approved"
    with pytest.raises(SignatureAltered, match="never edited"):
        Signature.objects.bulk_create(
            [rejection], update_conflicts=True, update_fields=["meaning"], unique_fields=["id"]
        )
    assert stored() == before


def test_bulk_create_still_inserts_new_signatures(rejection, compliance):
    copy = Signature(
        **{f.attname: getattr(rejection, f.attname) for f in Signature._meta.concrete_fields}
    )
    copy.pk, copy.signer = None, compliance
    Signature.objects.bulk_create([copy])
    assert Signature.objects.filter(request=rejection.request, signer=compliance).exists()


@KINDS
def test_a_changed_signature_is_not_saved(signed):
    before = stored()
    signed.meaning, signed.record_sha256 = "rejected", "0" * 64
    with pytest.raises(SignatureAltered, match="never edited"):
        signed.save()
    with pytest.raises(SignatureAltered, match="never edited"):
        signed.save(update_fields=["meaning"])
    assert stored() == before


@KINDS
def test_a_signature_instance_is_not_deleted(signed):
    before = stored()
    with pytest.raises(SignatureAltered, match="never deleted"):
        signed.delete()
    assert stored() == before


def test_a_new_instance_with_a_stored_signatures_id_is_not_written_over_it(rejection):
    before = stored()
    forged = Signature(
        **{f.attname: getattr(rejection, f.attname) for f in Signature._meta.concrete_fields}
    )
    forged.meaning = "approved"
    # Refused as a duplicate insert, not as an UPDATE the database's triggers stop.
    with pytest.raises(IntegrityError, match="UNIQUE|unique"), transaction.atomic():
        forged.save()
    assert stored() == before


# A policy version's own rules refuse its deletion first (test_policy_immutability.py).
@pytest.mark.parametrize("signed", ["request", "plan"], indirect=True)
def test_the_record_a_signature_is_on_and_its_signer_cannot_be_deleted(signed):
    record = signed.request or signed.plan
    for obj in (record, signed.signer):
        with pytest.raises(ProtectedError), transaction.atomic():
            obj.delete()
    assert Signature.objects.filter(pk=signed.pk).exists()


# --- the database -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET meaning = 'approved' WHERE id = %s",
        f"UPDATE {TABLE} SET comment = comment WHERE id = %s",
        f"DELETE FROM {TABLE} WHERE id = %s",
    ],
)
def test_database_refuses_raw_update_and_delete_of_a_signature(rejection, statement):
    before = stored()
    with pytest.raises(IntegrityError, match=REFUSAL):
        raw(statement, [rejection.pk])
    assert stored() == before


@pytest.mark.postgres
def test_postgresql_refuses_truncate_of_the_signature_table(rejection):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL; SQLite has no TRUNCATE statement")
    before = stored()
    with pytest.raises(IntegrityError, match=REFUSAL):
        truncate()
    assert stored() == before


# --- what the record shows --------------------------------------------------------------------


def test_a_rejection_stays_a_rejection_whatever_is_tried(api, decided, rejection, plan, auditor):
    def shown():
        gate = transitions.approvals_gate(decided)
        client = api.as_user(auditor)
        return (
            (gate.passed, gate.reason, gate.evidence),
            client.get(f"/api/v1/transition-requests/{decided.pk}/").json()["signatures"],
            client.get(f"{PLANS}{plan.pk}/").json()["signatures"],
        )

    before, rows, events = shown(), stored(), AuditEvent.objects.count()
    assert before[0][:2] == (False, "1 of 2 approvals")
    assert all(s["record_matches"] for s in before[1] + before[2])
    plan_signature = Signature.objects.get(plan=plan)
    attempts = [
        lambda: Signature.objects.filter(pk=rejection.pk).update(meaning="approved"),
        lambda: Signature._base_manager.filter(pk=rejection.pk).update(meaning="approved"),
        lambda: Signature.objects.filter(pk=rejection.pk).delete(),
        lambda: Signature.objects.bulk_update([rejection], ["meaning"]),
        rejection.save,
        rejection.delete,
        plan_signature.delete,
        lambda: raw(f"UPDATE {TABLE} SET meaning = 'approved' WHERE id = %s", [rejection.pk]),
        lambda: raw(f"UPDATE {TABLE} SET record_sha256 = 'x' WHERE id = %s", [plan_signature.pk]),
        lambda: raw(f"DELETE FROM {TABLE}"),
    ]
    if connection.vendor == "postgresql":
        attempts.append(truncate)
    rejection.meaning = "approved"
    for attempt in attempts:
        with pytest.raises((SignatureAltered, IntegrityError)), transaction.atomic():
            attempt()
    assert shown() == before
    assert stored() == rows
    assert AuditEvent.objects.count() == events  # a refused change leaves no trace to explain
