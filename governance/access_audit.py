"""Every change of access (grants, revokes, roles, deactivations, lockouts) also enters the
hash-chained audit trail, beside its row in the access log (DESIGN rule 1)."""

from django.dispatch import receiver

from governance import audit_chain
from governance.choices import AuditAction
from registry.access_log import access_changed
from registry.choices import AccessAction


@receiver(access_changed, dispatch_uid="stagegate_access_to_audit")
def audit_access_change(
    sender, *, actor, action, target_user, target_group, project, right, change, **kwargs
):
    kind = (
        AuditAction.LOGIN_LOCKED_OUT
        if action == AccessAction.LOCKED_OUT
        else AuditAction.ACCESS_CHANGED
    )
    audit_chain.record(
        kind,
        target=change,
        actor=actor,
        project_id=project.pk if project else None,
        after={
            "action": str(action),
            "target": change.target_name,
            "right": right,
            "project": project.key if project else None,
            "detail": change.detail,
        },
    )
