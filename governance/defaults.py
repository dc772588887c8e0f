"""Rows Stagegate cannot run without, created after every migrate (idempotent):
the audit chain's head and the shipped default lifecycle policy for each risk tier."""

from django.utils import timezone

GENESIS_HASH = "0" * 64


def ensure_defaults(**kwargs) -> None:
    from governance.models import AuditChainHead, LifecyclePolicy
    from governance.policy_rules import DEFAULT_POLICIES

    AuditChainHead.objects.get_or_create(pk=1, defaults={"sequence": 0, "hash": GENESIS_HASH})
    for tier, definition in DEFAULT_POLICIES.items():
        LifecyclePolicy.objects.get_or_create(
            name=f"default-{tier}-risk",
            version=1,
            defaults={
                "risk_tier": tier,
                "definition": definition,
                "status": "approved",
                "is_default": True,
                "approved_at": timezone.now(),
                "description": f"Stagegate's shipped lifecycle policy for {tier}-risk projects.",
            },
        )
