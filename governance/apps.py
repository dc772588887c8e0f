from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance import (  # noqa: F401 - these connect their signal receivers or checks
            access_audit,
            deploy_checks,
            history_audit,
        )
        from governance.defaults import ensure_defaults

        post_migrate.connect(ensure_defaults, sender=self, dispatch_uid="stagegate_defaults")
