"""Policy actions: which policy governs a project, new policy versions and their approval."""

from django.db import transaction
from django.utils import timezone

from governance import audit_chain
from governance.choices import AuditAction, PolicyStatus, SignatureMeaning
from governance.errors import Conflict, NotAllowed
from governance.models import LifecyclePolicy, ProjectPolicy, Signature
from governance.signing import confirm_password, digest, policy_record
from registry.history import printed_name
from registry.record_checks import validated_save
from registry.roles import Role


def default_policy(risk_tier: str) -> LifecyclePolicy | None:
    """The shipped, approved default policy for a risk tier (latest version)."""
    return (
        LifecyclePolicy.objects.filter(
            risk_tier=risk_tier, is_default=True, status=PolicyStatus.APPROVED
        )
        .order_by("-version")
        .first()
    )


def policy_for(project) -> LifecyclePolicy:
    """The policy version governing `project`; the tier default binds on first use."""
    binding = ProjectPolicy.objects.filter(project=project).select_related("policy").first()
    if binding is not None:
        return binding.policy
    policy = default_policy(project.risk_tier)
    if policy is None:
        raise Conflict(f"no approved policy exists for risk tier {project.risk_tier}")
    _bind(project, policy, actor=None, reason="default policy for the project's risk tier")
    return policy


def current_policy(project) -> LifecyclePolicy:
    """`policy_for(project)`, without a query when the project was read with its binding
    (`select_related("policy_binding__policy")`)."""
    related = type(project).policy_binding.related
    if related.is_cached(project):
        binding = related.get_cached_value(project)  # None: the project has no binding yet
        if binding is not None:
            return binding.policy
    return policy_for(project)


def _bind(project, policy, *, actor, reason):
    from governance.transitions import supersede_for_policy  # it reads the bound policy

    # Its own transaction when the first use binds the default outside one (policy_for).
    with transaction.atomic(savepoint=False):
        binding, created = ProjectPolicy.objects.update_or_create(
            project=project, defaults={"policy": policy}
        )
        audit_chain.record(
            AuditAction.POLICY_BOUND,
            target=binding,
            actor=actor,
            reason=reason,
            after={"project": project.key, "policy": str(policy)},
        )
        if not created:  # a first binding has no requests made under another version
            supersede_for_policy(project, policy, actor=actor)
    return binding


@transaction.atomic
def bind_policy(project, policy: LifecyclePolicy, *, actor, reason: str = "") -> ProjectPolicy:
    """Move a project to another policy version; only approved versions can govern."""
    policy = LifecyclePolicy.objects.select_for_update().get(pk=policy.pk)
    if policy.status != PolicyStatus.APPROVED:
        raise Conflict(f"{policy} is not approved by a compliance officer yet")
    if policy.risk_tier != project.risk_tier:
        raise Conflict(f"{policy} is for {policy.risk_tier}-risk projects, not {project.risk_tier}")
    return _bind(project, policy, actor=actor, reason=reason or "policy changed")


@transaction.atomic
def propose_policy_version(
    *, actor, name: str, risk_tier: str, definition: dict, description: str = ""
) -> LifecyclePolicy:
    """A new draft version of a policy (the next number under `name`)."""
    latest = (
        LifecyclePolicy.objects.select_for_update().filter(name=name).order_by("-version").first()
    )
    policy = LifecyclePolicy(
        name=name,
        version=(latest.version + 1) if latest else 1,
        risk_tier=risk_tier,
        definition=definition,
        description=description,
        created_by=actor,
        status=PolicyStatus.DRAFT,
    )
    validated_save(policy, actor=actor, reason="policy version proposed")
    audit_chain.record(
        AuditAction.POLICY_CREATED,
        target=policy,
        actor=actor,
        after={"name": name, "version": policy.version, "risk_tier": risk_tier},
    )
    return policy


def approve_policy_version(
    policy: LifecyclePolicy, *, signer, password: str, comment: str = "", http_request=None
) -> Signature:
    """A compliance officer's signature approves a draft policy version."""
    # Who may approve is settled before the password is asked (the author never changes).
    if not signer.groups.filter(name=Role.COMPLIANCE_OFFICER).exists():
        raise NotAllowed("only a compliance officer can approve a policy version")
    if policy.created_by_id == signer.pk:
        raise NotAllowed("the author of a policy version cannot approve it")
    confirm_password(signer, password, http_request)  # outside the transaction: see sign()
    with transaction.atomic():
        return _approve(policy, signer=signer, comment=comment)


def _approve(policy, *, signer, comment) -> Signature:
    policy = LifecyclePolicy.objects.select_for_update().get(pk=policy.pk)
    if policy.status != PolicyStatus.DRAFT:
        raise Conflict(f"{policy} is already {policy.get_status_display().lower()}")
    text, sha = digest(policy_record(policy))
    now = timezone.now()
    signature = Signature.objects.create(
        policy=policy,
        signer=signer,
        printed_name=printed_name(signer),
        role=Role.COMPLIANCE_OFFICER,
        signed_at=now,
        meaning=SignatureMeaning.APPROVED,
        comment=comment,
        record_sha256=sha,
        signed_record=text,
    )
    policy.status, policy.approved_at = PolicyStatus.APPROVED, now
    policy._change_reason, policy._history_user = "approved by a compliance officer", signer
    policy.save()
    audit_chain.record(
        AuditAction.POLICY_APPROVED,
        target=policy,
        actor=signer,
        after={"signature": signature.pk, "record_sha256": sha},
    )
    return signature
