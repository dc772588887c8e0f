"""Make the audit table append-only on PostgreSQL and SQLite (governance/audit_triggers.py)."""

from django.db import migrations

from governance import audit_triggers


def install_triggers(apps, schema_editor):
    audit_triggers.install(schema_editor.connection)


def remove_triggers(apps, schema_editor):
    audit_triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [migrations.RunPython(install_triggers, remove_triggers)]
