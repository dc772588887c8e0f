"""Transition actions: request, sign, withdraw, re-evaluate, and apply (DESIGN rule 2).

A model version's stage changes only here, inside one transaction that holds row locks on the
request and the version and re-checks every gate at that moment, so concurrent approvals
apply a transition exactly once.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from config.request_context import acting_as
from governance import audit_chain
from governance.choices import AuditAction, RequestStatus, SignatureMeaning
from governance.errors import Conflict, NotAllowed
from governance.gates import (
    EVIDENCE_RELATED,
    GateResult,
    evaluate_evidence,
    evidence_annotations,
    locked_for_evidence,
    locked_version_queryset,
)
from governance.history_audit import remember_values
from governance.models import LifecyclePolicy, Signature, TransitionRequest
from governance.monitoring.plans import change_control_gates, rule_for_version
from governance.policies import current_policy
from governance.policy_rules import rule_for
from governance.signing import confirm_password, digest, request_record
from registry.access import (
    has_project_right,
    right_and_groups,
    right_and_groups_annotations,
    right_and_groups_of,
)
from registry.choices import ProjectRight, Stage
from registry.history import printed_name, tag_change
from registry.models import ModelVersion
from registry.prepared import PreparedQuery
from registry.roles import Role
from registry.stage_guard import moving_stage

APPROVING = SignatureMeaning.APPROVED
DECIDING = (SignatureMeaning.APPROVED, SignatureMeaning.REJECTED, SignatureMeaning.REVIEWED)
REQUESTER_MEANINGS = (SignatureMeaning.AUTHORED, SignatureMeaning.RESPONSIBILITY)


def _settings(request) -> dict:
    return request.policy.definition.get("settings", {})


def approvals_gate(request, signatures=None) -> GateResult:
    """Count approvals that still match the record, from distinct eligible signers.

    `signatures` are the request's signatures when the caller has them already; a request
    not saved yet has none.
    """
    rule = request.rule["approvals"]
    if signatures is None:
        signatures = _SIGNATURES(request_pk=request.pk) if request.pk else []
    current_sha = digest(request_record(request))[1] if signatures else ""
    valid, stale, signers = [], 0, set()
    for signature in signatures:
        if signature.meaning != APPROVING:
            continue
        if signature.record_sha256 != current_sha:
            stale += 1
            continue
        # Separation of duties: never the requester, and one person counts once (the table's
        # one-signature-per-signer constraint says so too; the gate does not rely on it).
        eligible = (
            signature.role in rule["roles"] and signature.signer_id != request.requested_by_id
        )
        if eligible and signature.signer_id not in signers:
            signers.add(signature.signer_id)
            valid.append(signature)
    compliance = any(s.role == Role.COMPLIANCE_OFFICER for s in valid)
    need_compliance = rule.get("compliance_officer_required", False)
    parts = [f"{len(valid)} of {rule['count']} approvals"]
    if need_compliance:
        parts.append(
            "compliance officer signed"
            if compliance
            else "a compliance officer's approval is still required"
        )
    if stale:
        parts.append(f"{stale} approval(s) no longer match the record and must be renewed")
    passed = len(valid) >= rule["count"] and (compliance or not need_compliance)
    return GateResult(
        "approvals",
        passed,
        "; ".join(parts),
        kind="approvals",
        evidence={"signatures": [s.pk for s in valid]},
    )


def _evaluate(
    request, evidence: list[GateResult] | None = None, signatures=None
) -> list[GateResult]:
    """Evaluate the gates; `evidence` already evaluated in this transaction is reused, and
    only the approvals gate (which a new signature changes) is recomputed."""
    if evidence is None:
        evidence = evaluate_evidence(request.model_version, request.rule, _settings(request))
        # Issue 9: whether a retrained version is inside its change-control plan (informational).
        evidence += change_control_gates(request.rule)
    else:
        evidence = [g for g in evidence if g.kind != "approvals"]
    # The approvals gate hashes the record with the fresh evidence, so store that first.
    request.gate_results = [g.as_dict() for g in evidence]
    results = [*evidence, approvals_gate(request, signatures)]
    request.gate_results = [g.as_dict() for g in results]
    request.gates_evaluated_at = timezone.now()
    return results


# What changes on a request after it is made (the rest is fixed when it is requested).
_EVALUATED = ["gate_results", "gates_evaluated_at"]
_DECIDED = ["status", "decided_at", "decision_note"]


def _close(request, status, action, *, actor, note: str):
    request.status, request.decided_at, request.decision_note = status, timezone.now(), note
    tag_change(request, actor=actor, reason=note)
    request.save(update_fields=[*_DECIDED, *_EVALUATED])
    audit_chain.record(action, target=request, actor=actor, reason=note, after={"status": status})


@transaction.atomic
def request_transition(version: ModelVersion, to_stage: str, *, actor, justification: str):
    """Ask to move `version` to `to_stage`; the gates are evaluated and stored at once."""
    with audit_chain.batched():
        return _request_transition(version, to_stage, actor=actor, justification=justification)


def _request_transition(version, to_stage, *, actor, justification):
    if not justification or not justification.strip():
        raise Conflict("a justification is required")
    version = _LOCKED_FOR_REQUEST.get(version_pk=version.pk, actor_pk=actor.pk)
    project = version.registered_model.project
    may_contribute, _ = right_and_groups_of(version, ())
    if not may_contribute:
        raise NotAllowed(f"you need the 'contribute' right on {project.key} to request transitions")
    if to_stage not in Stage.values:
        raise Conflict(f"unknown stage {to_stage!r}")
    policy = current_policy(project)
    rule = rule_for(policy.definition, version.stage, to_stage)
    if rule is None:
        raise Conflict(f"{policy} does not allow {version.stage} → {to_stage}")
    # Issue 9: a retrained version inside the approved change-control plan takes the policy's
    # lighter in-plan approvals; any other retrained version keeps the full rule, flagged.
    rule = rule_for_version(version, rule, policy.definition)
    if version.has_pending_request:
        raise Conflict(f"{version} already has a pending transition request")
    request = TransitionRequest(
        model_version=version,
        from_stage=version.stage,
        to_stage=to_stage,
        justification=justification.strip(),
        requested_by=actor,
        requested_by_name=printed_name(actor),
        policy=policy,
        rule=rule,
    )
    # Evaluated before the first save, so the request is written once, with its gates.
    _evaluate(request)
    tag_change(request, actor=actor, reason="transition requested")
    request.save()
    audit_chain.record(
        AuditAction.TRANSITION_REQUESTED,
        target=request,
        actor=actor,
        reason=justification,
        after={
            "from": request.from_stage,
            "to": to_stage,
            "policy": str(policy),
            "gates": [{k: g[k] for k in ("name", "passed")} for g in request.gate_results],
        },
    )
    return request


# The roles that can sign a deciding signature, most specific first.
SIGNING_ROLES = (Role.COMPLIANCE_OFFICER, Role.REVIEWER)


def _locked_request(with_version: bool) -> PreparedQuery:
    """The request locked, with its project and policy. `with_version`: its version locked too,
    with what the evidence checks need, and the signer's review right and roles (`signer_pk`)."""
    related = ["model_version__registered_model__project", "policy"]
    locks = ["self"]
    annotations = {}
    if with_version:
        related += [f"model_version__{path}" for path in EVIDENCE_RELATED]
        locks.append("model_version")
        annotations = evidence_annotations("model_version__")

    def build(request_pk, signer_pk=None):
        signer = {}
        if signer_pk is not None:
            project = OuterRef("model_version__registered_model__project_id")
            signer = right_and_groups_annotations(
                signer_pk, project, ProjectRight.REVIEW, SIGNING_ROLES
            )
        return (
            TransitionRequest.objects.select_for_update(of=locks)
            .select_related(*related)
            .annotate(**annotations, **signer)
            .filter(pk=request_pk)
        )

    return PreparedQuery(build, TransitionRequest)


_LOCKED_REQUEST = {False: _locked_request(False), True: _locked_request(True)}
_SIGNATURES = PreparedQuery(
    lambda request_pk: Signature.objects.filter(request_id=request_pk), Signature
)
# The version locked for a new request, with the evidence checks' reads, the requester's
# right, and whether a request is already pending (the database refuses two as well).
_LOCKED_FOR_REQUEST = PreparedQuery(
    lambda version_pk, actor_pk: locked_version_queryset(version_pk).annotate(
        **right_and_groups_annotations(
            actor_pk, OuterRef("registered_model__project_id"), ProjectRight.CONTRIBUTE, ()
        ),
        has_pending_request=Exists(
            TransitionRequest.objects.filter(
                model_version_id=OuterRef("pk"), status=RequestStatus.PENDING
            )
        ),
    ),
    ModelVersion,
)


def _lock_open(request_id, *, signer=None) -> TransitionRequest:
    """The request, locked, refused unless still open. With a `signer`, its version is locked
    in the same statement, read with what the evidence checks need (see locked_for_evidence),
    and with the signer's right and roles as they are now (see `_signer_role`)."""
    if signer is None:
        request = _LOCKED_REQUEST[False].get(request_pk=request_id)
    else:
        request = _LOCKED_REQUEST[True].get(request_pk=request_id, signer_pk=signer.pk)
        version = request.model_version
        version.evidence_run_has_inputs = request.evidence_run_has_inputs
        version.evidence_open_high_risk = request.evidence_open_high_risk
    remember_values(request)
    if not request.is_open:
        raise Conflict(
            f"this request is {request.get_status_display().lower()}; "
            "it can no longer be signed or changed"
        )
    return request


def sign(
    request: TransitionRequest,
    *,
    signer,
    meaning: str,
    password: str,
    comment: str = "",
    http_request=None,
) -> Signature:
    """Record a Part 11 signature; an approval that completes the gates applies the transition.

    The password is checked before the transaction opens, so a failed attempt is kept (and
    counts toward lockout) even though nothing else is written.
    """
    if meaning not in SignatureMeaning.values:
        raise Conflict(f"unknown signature meaning {meaning!r}")
    # Who may sign is settled before the password is asked: someone who may not sign gets a
    # refusal, not a password prompt (nor a failed attempt toward lockout).
    _signer_role(request, signer, meaning)
    confirm_password(signer, password, http_request)
    with transaction.atomic(), audit_chain.batched():
        # ...and again once the password is confirmed (in _sign, under the request's lock):
        # checking it takes a few hundred milliseconds, in which the signer's role or right
        # may have been revoked. The signature records the role held when it was made.
        return _sign(request, signer=signer, meaning=meaning, comment=comment)


def _signer_role(request, signer, meaning, rights=None) -> str | None:
    """The role `signer` signs `request` in (None for the requester's own meanings), or the
    refusal: separation of duties, the project's review right, a role the rule accepts."""
    if signer.pk == request.requested_by_id and meaning not in REQUESTER_MEANINGS:
        # Separation of duties: nobody approves or rejects their own request.
        raise NotAllowed("you cannot approve or reject your own request")
    if meaning not in DECIDING:
        # 21 CFR 11.50: the meaning must be true of the signer. Authorship and responsibility
        # for a request are its requester's, who must still hold the right to request it.
        if signer.pk != request.requested_by_id:
            raise NotAllowed(f"only the requester can sign a request as '{meaning}'")
        project = request.model_version.registered_model.project
        if not has_project_right(signer, project, ProjectRight.CONTRIBUTE):
            raise NotAllowed(f"you need the 'contribute' right on {project.key} to sign this")
        return None
    project = request.model_version.registered_model.project
    if rights is None:
        rights = right_and_groups(signer, project, ProjectRight.REVIEW)
    may_review, groups = rights
    if not may_review:
        raise NotAllowed(f"you need the 'review' right on {project.key} to sign requests")
    for role in SIGNING_ROLES:
        if role in groups and role in request.rule["approvals"]["roles"]:
            return role
    raise NotAllowed(
        "your role may not sign this transition: it needs "
        + " or ".join(request.rule["approvals"]["roles"])
    )


def _sign(request, *, signer, meaning, comment) -> Signature:
    # The version is locked too: the evidence evaluated below is what a completing approval
    # applies on, so it must not change before the end of this transaction.
    request = _lock_open(request.pk, signer=signer)
    role = _signer_role(
        request, signer, meaning, rights=right_and_groups_of(request, SIGNING_ROLES)
    )
    remember_values(request.model_version)
    project = request.model_version.registered_model.project
    signatures = _SIGNATURES(request_pk=request.pk)
    if any(s.signer_id == signer.pk for s in signatures):
        raise Conflict("you have already signed this request")
    # Sign what is true now, not what was true when it was requested.
    evidence = _evaluate(request, signatures=signatures)
    text, sha = digest(request_record(request))
    signature = Signature.objects.create(
        request=request,
        signer=signer,
        printed_name=printed_name(signer),
        role=role or "requester",
        signed_at=timezone.now(),
        meaning=meaning,
        comment=comment,
        record_sha256=sha,
        signed_record=text,
    )
    audit_chain.record(
        AuditAction.SIGNATURE_RECORDED,
        target=signature,
        actor=signer,
        reason=comment,
        project_id=project.pk,
        after={
            "request": request.pk,
            "meaning": meaning,
            "printed_name": signature.printed_name,
            "record_sha256": sha,
            "role": signature.role,
        },
    )
    if meaning == SignatureMeaning.REJECTED:
        _close(
            request,
            RequestStatus.REJECTED,
            AuditAction.TRANSITION_REJECTED,
            actor=signer,
            note=f"rejected by {signature.printed_name}: {comment}".rstrip(": "),
        )
        return signature
    _apply_if_ready(
        request,
        actor=signer,
        evidence=evidence,
        version=request.model_version,
        signatures=[*signatures, signature],
    )
    return signature


@transaction.atomic
def withdraw(request: TransitionRequest, *, actor, reason: str = "") -> TransitionRequest:
    """The requester (or a project manager) withdraws a pending request."""
    with audit_chain.batched():
        return _withdraw(request, actor=actor, reason=reason)


def _withdraw(request, *, actor, reason):
    request = _lock_open(request.pk)
    project = request.model_version.registered_model.project
    if actor.pk != request.requested_by_id and not has_project_right(
        actor, project, ProjectRight.MANAGE
    ):
        raise NotAllowed("only the requester or a project manager can withdraw a request")
    _close(
        request,
        RequestStatus.WITHDRAWN,
        AuditAction.TRANSITION_WITHDRAWN,
        actor=actor,
        note=reason or "withdrawn",
    )
    return request


@transaction.atomic
def reevaluate(request: TransitionRequest, *, actor) -> TransitionRequest:
    """Re-run the gates after new evidence arrived; applies the transition if all pass."""
    with audit_chain.batched():
        return _reevaluate(request, actor=actor)


def _reevaluate(request, *, actor):
    request = _lock_open(request.pk)
    if not has_project_right(actor, request.project, ProjectRight.CONTRIBUTE) and not (
        has_project_right(actor, request.project, ProjectRight.REVIEW)
    ):
        raise NotAllowed("you may not re-evaluate this request")
    _apply_if_ready(request, actor=actor)
    return request


def _apply_if_ready(
    request: TransitionRequest, *, actor, evidence=None, version=None, signatures=None
) -> None:
    """Apply the transition if every gate passes now. `version` is the version when this
    transaction has locked it already; `evidence` and `signatures` were read under that lock."""
    if version is None:
        version = locked_for_evidence(request.model_version_id)
    if version.stage != request.from_stage:
        _close(
            request,
            RequestStatus.SUPERSEDED,
            AuditAction.TRANSITION_SUPERSEDED,
            actor=actor,
            note=f"the version moved to {version.stage} meanwhile",
        )
        return
    if _is_stale(request, timezone.now()):
        _expire(request, actor=actor)
        return
    request.model_version = version
    results = _evaluate(request, evidence, signatures)
    if not all(g.passed for g in results):
        tag_change(request, actor=actor, reason="gates evaluated")
        request.save(update_fields=_EVALUATED)
        return
    _apply(request, version, actor=actor)  # closing the request saves its gate results


def _move(
    version: ModelVersion,
    to_stage: str,
    *,
    actor,
    request,
    reason: str,
    other_pending: TransitionRequest | None = None,
) -> None:
    """Write `version`'s new stage (the only writer of a stage) and its audit event.
    `other_pending` is a pending request of `version` other than `request`, locked: it asked
    to move the version from the stage it is leaving, so it is closed as superseded."""
    before = version.stage
    version.stage = to_stage
    tag_change(version, actor=actor, reason=reason)
    with moving_stage(version):
        version.save(update_fields=["stage", "updated_at"])
    audit_chain.record(
        AuditAction.STAGE_CHANGED,
        target=version,
        actor=actor,
        reason=reason,
        before={"stage": before},
        after={"stage": to_stage, "transition_request": request.pk},
    )
    if other_pending is not None and other_pending.pk != request.pk:
        _close(
            other_pending,
            RequestStatus.SUPERSEDED,
            AuditAction.TRANSITION_SUPERSEDED,
            actor=actor,
            note=f"the version moved to {to_stage} meanwhile (transition request {request.pk})",
        )


def supersede_for_policy(project, policy: LifecyclePolicy, *, actor) -> list[TransitionRequest]:
    """Close as superseded the project's pending requests made under another policy version,
    each with its audit event. A request keeps the rule it was made under (its gates and
    approvals); once the project is bound to another version, that rule no longer governs it,
    and the change must be requested again under the new one. Called by the policy binding,
    in its transaction."""
    pending = (
        TransitionRequest.objects.select_for_update(of=("self",))
        .select_related("model_version__registered_model__project", "policy")
        .filter(model_version__registered_model__project=project, status=RequestStatus.PENDING)
        .exclude(policy=policy)
        .order_by("pk")
    )
    closed = []
    for request in pending:
        remember_values(request)
        _close(
            request,
            RequestStatus.SUPERSEDED,
            AuditAction.TRANSITION_SUPERSEDED,
            actor=actor,
            note=f"the project moved to policy {policy} meanwhile; request it again under it",
        )
        closed.append(request)
    return closed


def _pending_requests_locked(version_ids: list[int]) -> dict[int, TransitionRequest]:
    """The pending request of each of these versions (one at most each), locked. Read after
    the versions are locked, so none can be made meanwhile and none made before is missed."""
    pending = (
        TransitionRequest.objects.select_for_update(of=("self",))
        .select_related("model_version__registered_model__project", "policy")
        .filter(model_version_id__in=version_ids, status=RequestStatus.PENDING)
    )
    for request in pending:
        remember_values(request)
    return {request.model_version_id: request for request in pending}


def _apply(request: TransitionRequest, version: ModelVersion, *, actor) -> None:
    if request.rule.get("demote_previous_production") and request.to_stage == Stage.PRODUCTION:
        previous = list(
            ModelVersion.objects.select_for_update()
            .filter(registered_model_id=version.registered_model_id, stage=Stage.PRODUCTION)
            .exclude(pk=version.pk)
        )
        pending = _pending_requests_locked([old.pk for old in previous]) if previous else {}
        for old in previous:
            _move(
                old,
                Stage.DEPRECATED,
                actor=actor,
                request=request,
                reason=f"replaced in production by version {version.version}",
                other_pending=pending.get(old.pk),
            )
    # `request` is the version's one pending request (the database holds that), so no other
    # request of the version itself is left to supersede.
    _move(
        version,
        request.to_stage,
        actor=actor,
        request=request,
        reason=f"transition request {request.pk} approved",
    )
    for result in request.gate_results:
        audit_id = result.get("evidence", {}).get("fairness_audit")
        if result["name"] == "fairness_audit_passed" and audit_id:
            audit_chain.record(
                AuditAction.FAIRNESS_AUDIT_USED,
                object_type="governance.fairnessaudit",
                object_id=audit_id,
                project_id=version.registered_model.project_id,
                actor=actor,
                after={"transition_request": request.pk, "passed": True},
            )
    _close(
        request,
        RequestStatus.APPLIED,
        AuditAction.TRANSITION_APPLIED,
        actor=actor,
        note=f"{request.from_stage} → {request.to_stage} applied",
    )


def _expiry_days(definition: dict) -> int | None:
    return definition.get("settings", {}).get("request_expiry_days") or None


def _is_stale(request: TransitionRequest, now) -> bool:
    expiry = _expiry_days(request.policy.definition)
    return expiry is not None and request.created_at < now - timedelta(days=expiry)


def _expire(request: TransitionRequest, *, actor) -> None:
    expiry = _expiry_days(request.policy.definition)
    _close(
        request,
        RequestStatus.EXPIRED,
        AuditAction.TRANSITION_EXPIRED,
        actor=actor,
        note=f"not decided within {expiry} days",
    )


_EXPIRY_REASON = "transition requests not decided in time expire"


def expire_stale_requests(*, actor=None, now=None) -> list[TransitionRequest]:
    """Close as expired every pending request older than its policy's `request_expiry_days`
    (the policy it was made under), each with its audit event; run on a schedule (Celery
    beat, or `manage.py expire_transition_requests`). With no `actor` the system acts.

    Idempotent: a request is locked and checked again before it is closed, so one that was
    decided meanwhile, or expired by a concurrent run, is left alone.
    """
    now = now or timezone.now()
    if actor is None:
        # The system, even when called inside someone's request.
        with acting_as(None, reason=_EXPIRY_REASON):
            return _expire_stale_requests(actor=None, now=now)
    return _expire_stale_requests(actor=actor, now=now)


def _expire_stale_requests(*, actor, now) -> list[TransitionRequest]:
    stale = Q(pk__in=[])
    pending = TransitionRequest.objects.filter(status=RequestStatus.PENDING)
    for policy_id, definition in LifecyclePolicy.objects.filter(
        pk__in=pending.values("policy_id")
    ).values_list("pk", "definition"):
        expiry = _expiry_days(definition)
        if expiry is not None:
            stale |= Q(policy_id=policy_id, created_at__lt=now - timedelta(days=expiry))
    expired = []
    for request_id in pending.filter(stale).order_by("pk").values_list("pk", flat=True):
        # One short transaction each: its lock is held briefly, and the requests already
        # expired stay expired should a later one fail.
        with transaction.atomic(), audit_chain.batched():
            request = _LOCKED_REQUEST[False].get(request_pk=request_id)
            if request.is_open and _is_stale(request, now):
                remember_values(request)
                _expire(request, actor=actor)
                expired.append(request)
    return expired
