"""Rows Stagegate cannot run without, created after every migrate (idempotent): the audit
chain's head and the shipped default lifecycle policy for each risk tier, read from the
fixture governance/fixtures/default_policies.json."""

from django.utils import timezone

GENESIS_HASH = "0" * 64


def ensure_defaults(**kwargs) -> None:
    from governance.models import AuditChainHead, LifecyclePolicy
    from governance.policy_rules import default_policy_records

    AuditChainHead.objects.get_or_create(pk=1, defaults={"sequence": 0, "hash": GENESIS_HASH})
    for record in default_policy_records():
        fields = dict(record)
        # A shipped policy is in force from its installation; an installed one never changes.
        LifecyclePolicy.objects.get_or_create(
            name=fields.pop("name"),
            version=fields.pop("version"),
            defaults={**fields, "approved_at": timezone.now()},
        )
