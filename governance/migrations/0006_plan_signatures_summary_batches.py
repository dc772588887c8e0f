"""Change-control plan approvals become `Signature` rows, like policy and transition signatures;
production batches may be summary statistics, counted on the reference's profiled bins.

Until now a plan's approving signature was stored in columns of the plan itself. This adds
`Signature.plan`, widens the "exactly one signed record" constraint to three records, moves
every existing plan signature into a `Signature` row with the same signer, printed name, time,
hash and signed text (the comment comes from the audit event that recorded the signing), and
then drops the plan's columns, so that there is one copy of each signature and it is immutable
like the others. The reverse copies them back and removes the plan signatures.

`MonitoringReference.profile` holds each reference column's kind and bins (computed when the
reference is registered, or on first use for references registered before), and
`MonitoringReport.source` says whether a batch was rows or summary statistics.
"""

import json

import django.db.models.deletion
from django.db import migrations, models

PLAN_COLUMNS = ("approved_by", "approved_by_name", "approved_at", "record_sha256", "signed_record")


def _comment(AuditEvent, plan) -> str:
    event = (
        AuditEvent.objects.filter(
            action="signature.recorded",
            object_type="governance.changecontrolplan",
            object_id=str(plan.pk),
        )
        .order_by("-sequence")
        .first()
    )
    return json.loads(event.payload).get("reason", "") if event is not None else ""


def plan_signatures_to_signature_rows(apps, schema_editor):
    ChangeControlPlan = apps.get_model("governance", "ChangeControlPlan")
    Signature = apps.get_model("governance", "Signature")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    for plan in ChangeControlPlan.objects.filter(approved_by__isnull=False).order_by("pk"):
        Signature.objects.create(
            plan=plan,
            signer_id=plan.approved_by_id,
            printed_name=plan.approved_by_name,
            role="compliance officer",
            signed_at=plan.approved_at,
            meaning="approved",
            comment=_comment(AuditEvent, plan),
            record_sha256=plan.record_sha256,
            signed_record=plan.signed_record,
        )


def signature_rows_to_plan_columns(apps, schema_editor):
    ChangeControlPlan = apps.get_model("governance", "ChangeControlPlan")
    Signature = apps.get_model("governance", "Signature")
    for signature in Signature.objects.filter(plan__isnull=False, meaning="approved"):
        ChangeControlPlan.objects.filter(pk=signature.plan_id).update(
            approved_by_id=signature.signer_id,
            approved_by_name=signature.printed_name,
            approved_at=signature.signed_at,
            record_sha256=signature.record_sha256,
            signed_record=signature.signed_record,
        )
    Signature.objects.filter(plan__isnull=False).delete()


def check_constraints_now(apps, schema_editor):
    """PostgreSQL defers foreign-key checks to the commit, and refuses to alter a table with
    such checks pending: run them now, between the data move and the schema changes next to
    it (in both directions)."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0005_monitoring"),
    ]

    operations = [
        migrations.AddField(
            model_name="signature",
            name="plan",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="signatures",
                to="governance.changecontrolplan",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="signature",
            name="signature_on_request_or_policy",
        ),
        migrations.AddConstraint(
            model_name="signature",
            constraint=models.UniqueConstraint(
                fields=("plan", "signer"), name="one_plan_signature_per_signer"
            ),
        ),
        migrations.AddConstraint(
            model_name="signature",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("plan__isnull", True), ("policy__isnull", True), ("request__isnull", False)
                )
                | models.Q(
                    ("plan__isnull", True), ("policy__isnull", False), ("request__isnull", True)
                )
                | models.Q(
                    ("plan__isnull", False), ("policy__isnull", True), ("request__isnull", True)
                ),
                name="signature_on_one_record",
            ),
        ),
        migrations.RunPython(check_constraints_now, check_constraints_now),
        migrations.RunPython(plan_signatures_to_signature_rows, signature_rows_to_plan_columns),
        migrations.RunPython(check_constraints_now, check_constraints_now),
        *(
            migrations.RemoveField(model_name="changecontrolplan", name=column)
            for column in PLAN_COLUMNS
        ),
        migrations.AddField(
            model_name="monitoringreference",
            name="profile",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="monitoringreport",
            name="source",
            field=models.CharField(
                choices=[
                    ("rows", "Rows (CSV or Parquet)"),
                    ("summary", "Summary statistics (counts per bin and category)"),
                ],
                default="rows",
                max_length=16,
            ),
        ),
    ]
