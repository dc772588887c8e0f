import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_PREFIX = {"code_version": "code"}


def name_existing_nodes(apps, schema_editor):
    """Give every node recorded before node ids existed the id lineage.node_ids would give it."""
    Node = apps.get_model("lineage", "Node")
    DatasetVersion = apps.get_model("registry", "DatasetVersion")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    for node in Node.objects.select_related("project").iterator():
        if node.kind == "dataset_version":
            version = DatasetVersion.objects.select_related("dataset").get(pk=node.object_id)
            node.ref = f"dataset:{node.project.key}:{version.dataset.name}#{version.version}"
        elif node.kind == "model_version":
            version = ModelVersion.objects.select_related("registered_model").get(
                pk=node.object_id
            )
            node.ref = (
                f"model:{node.project.key}:{version.registered_model.name}#{version.version}"
            )
        else:
            node.ref = f"{_PREFIX.get(node.kind, node.kind)}:{node.object_id}"
        node.save(update_fields=["ref"])


class Migration(migrations.Migration):

    dependencies = [
        ("lineage", "0002_initial"),
        ("registry", "0002_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="node",
            name="ref",
            field=models.CharField(max_length=600, null=True),
        ),
        migrations.RunPython(name_existing_nodes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="node",
            name="ref",
            field=models.CharField(max_length=600, unique=True),
        ),
        migrations.CreateModel(
            name="ReceivedEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("run_uuid", models.UUIDField()),
                ("event_type", models.CharField(max_length=16)),
                ("event_time", models.DateTimeField()),
                ("payload", models.JSONField()),
                ("received_at", models.DateTimeField(auto_now_add=True)),
                ("received_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("run", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="openlineage_events", to="lineage.run")),
            ],
            options={
                "ordering": ["event_time", "id"],
                "constraints": [models.UniqueConstraint(fields=("run_uuid", "event_type", "event_time"), name="unique_openlineage_event")],
            },
        ),
    ]
