"""Keep electronic signatures unchanged in the database, on PostgreSQL and SQLite
(governance/signature_triggers.py), and make the guarded manager the one Django uses for
related lookups (`_base_manager`).

Every foreign key of a signature (its request, policy, plan and signer) is already PROTECT:
the record a signature is on, and its signer, cannot be deleted while it exists.
"""

from django.db import migrations

from governance import signature_triggers


def install_triggers(apps, schema_editor):
    signature_triggers.install(schema_editor.connection)


def remove_triggers(apps, schema_editor):
    signature_triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("governance", "0008_policy_version_triggers")]

    operations = [
        migrations.AlterModelOptions(
            name="signature",
            options={"base_manager_name": "objects", "ordering": ["signed_at", "id"]},
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
