from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission

    from registry.roles import sync_role_permissions

    sync_role_permissions(Group, Permission)


def _binary_arrays(sender, connection, **kwargs):
    """On PostgreSQL, send list parameters in the binary format. Django's bulk_create sends
    each column as one array (INSERT ... SELECT * FROM UNNEST(...)); in the text format
    psycopg escapes every element of a text array with a regular expression in Python, which
    took a sixth of an OpenLineage batch's time (bench/RESULTS.md)."""
    if connection.vendor == "postgresql":
        from psycopg.types.array import ListBinaryDumper

        connection.connection.adapters.register_dumper(list, ListBinaryDumper)


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self):
        # Importing these connects their signal receivers: history stamping, the access log
        # (grants, revokes, roles, deactivations) and lockout recording.
        from registry import access_log, accounts, history  # noqa: F401

        # Permissions are created after migrations run, so the roles receive theirs then.
        post_migrate.connect(_sync_roles, dispatch_uid="stagegate_sync_roles")
        connection_created.connect(_binary_arrays, dispatch_uid="stagegate_binary_arrays")
        # SQLite's stage guard triggers call a function each connection must have.
        from registry.stage_guard import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="stagegate_stage_guard")
