import django.db.models.deletion
from django.db import migrations, models


def copy_node_projects(apps, schema_editor):
    """Copy each end's project onto the edges recorded before edges carried them."""
    Edge = apps.get_model("lineage", "Edge")
    Node = apps.get_model("lineage", "Node")
    Edge.objects.update(
        src_project_id=models.Subquery(
            Node.objects.filter(pk=models.OuterRef("src_id")).values("project_id")[:1]
        ),
        dst_project_id=models.Subquery(
            Node.objects.filter(pk=models.OuterRef("dst_id")).values("project_id")[:1]
        ),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("lineage", "0003_node_ref_receivedevent"),
        ("registry", "0002_roles"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="edge", name="edge_dst_src"),
        migrations.AddField(
            model_name="edge",
            name="src_project",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="registry.project"),
        ),
        migrations.AddField(
            model_name="edge",
            name="dst_project",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="registry.project"),
        ),
        migrations.RunPython(copy_node_projects, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="edge",
            name="src_project",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="registry.project"),
        ),
        migrations.AlterField(
            model_name="edge",
            name="dst_project",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="registry.project"),
        ),
        migrations.AlterField(
            model_name="edge",
            name="src",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="out_edges", to="lineage.node"),
        ),
        migrations.AlterField(
            model_name="edge",
            name="dst",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="in_edges", to="lineage.node"),
        ),
        migrations.AddIndex(
            model_name="edge",
            index=models.Index(fields=["src", "dst"], include=["dst_project"], name="edge_src_dst"),
        ),
        migrations.AddIndex(
            model_name="edge",
            index=models.Index(fields=["dst", "src"], include=["src_project"], name="edge_dst_src"),
        ),
    ]
