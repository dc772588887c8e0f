"""Keep approved and retired policy versions unchanged in the database, on PostgreSQL and
SQLite (governance/policy_triggers.py)."""

from django.db import migrations

from governance import policy_triggers


def install_triggers(apps, schema_editor):
    policy_triggers.install(schema_editor.connection)


def remove_triggers(apps, schema_editor):
    policy_triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_one_pending_request_per_version")]

    operations = [migrations.RunPython(install_triggers, remove_triggers)]
