from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance import history_audit  # noqa: F401 - connects the history → audit hook
        from governance.defaults import ensure_defaults

        post_migrate.connect(ensure_defaults, sender=self, dispatch_uid="stagegate_defaults")
