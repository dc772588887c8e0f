"""Guard a model version's stage in the database (registry/stage_guard.py), and make the
guarded manager the one Django uses for related lookups (`_base_manager`)."""

from django.db import migrations

from registry import stage_guard


def install_guard(apps, schema_editor):
    stage_guard.install(schema_editor.connection)


def remove_guard(apps, schema_editor):
    stage_guard.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_access_log")]

    operations = [
        migrations.AlterModelOptions(
            name="modelversion",
            options={"base_manager_name": "objects", "ordering": ["registered_model", "-version"]},
        ),
        migrations.RunPython(install_guard, remove_guard),
    ]
