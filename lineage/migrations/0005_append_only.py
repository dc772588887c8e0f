"""Make the lineage graph append-only in the database, on PostgreSQL and SQLite
(lineage/append_only.py), and make the guarded managers the ones Django uses for related
lookups (`_base_manager`)."""

from django.db import migrations

from lineage import append_only


def install_triggers(apps, schema_editor):
    append_only.install(schema_editor.connection)


def remove_triggers(apps, schema_editor):
    append_only.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("lineage", "0004_edge_projects")]

    operations = [
        migrations.AlterModelOptions(name="edge", options={"base_manager_name": "objects"}),
        migrations.AlterModelOptions(name="node", options={"base_manager_name": "objects"}),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
