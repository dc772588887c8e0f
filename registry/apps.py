from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission

    from registry.roles import sync_role_permissions

    sync_role_permissions(Group, Permission)


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self):
        # Importing these connects their signal receivers: history stamping, the access log
        # (grants, revokes, roles, deactivations) and lockout recording.
        from registry import access_log, accounts, history  # noqa: F401

        # Permissions are created after migrations run, so the roles receive theirs then.
        post_migrate.connect(_sync_roles, dispatch_uid="stagegate_sync_roles")
