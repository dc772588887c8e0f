"""Admin pages for code versions, runs and received OpenLineage events (read-only: they
arrive through the API)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from lineage.models import CodeVersion, ReceivedEvent, Run
from registry.admin import ImmutableAdmin, VisibleRelatedFilter
from registry.choices import ProjectRight


@admin.register(CodeVersion)
class CodeVersionAdmin(ImmutableAdmin):
    list_display = ["repository_url", "commit_sha", "branch", "dirty", "project", "created_at"]
    list_filter = ["dirty", ("project", VisibleRelatedFilter)]
    search_fields = ["repository_url", "commit_sha", "branch"]
    list_select_related = ["project"]


@admin.register(Run)
class RunAdmin(ImmutableAdmin):
    list_display = ["name", "kind", "status", "project", "started_at", "ended_at"]
    list_filter = ["kind", "status", ("project", VisibleRelatedFilter)]
    search_fields = ["name", "external_id"]
    list_select_related = ["project"]


@admin.register(ReceivedEvent)
class ReceivedEventAdmin(admin.ModelAdmin):
    """OpenLineage events exactly as a pipeline posted them: the evidence behind its runs.

    Nobody adds, changes or deletes one here. Like every record, an event is seen only by
    those who may view its run's project (ReceivedEvent keeps no history of its own: it is
    never changed, and its arrival is in the audit trail with the digest of its payload).
    """

    list_display = [
        "event_type",
        "run_uuid",
        "event_time",
        "run",
        "project",
        "received_by",
        "received_at",
    ]
    list_filter = [
        "event_type",
        ("run__project", VisibleRelatedFilter),
        "run__status",
        "event_time",
        "received_at",
    ]
    search_fields = ["run_uuid", "run__name"]
    date_hierarchy = "event_time"
    list_select_related = ["run__project", "received_by"]
    fields = readonly_fields = (
        "event_type",
        "event_time",
        "run_uuid",
        "run",
        "received_by",
        "received_at",
        "payload_json",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user, ProjectRight.VIEW)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="project", ordering="run__project__key")
    def project(self, event):
        return event.run.project

    @admin.display(description="payload")
    def payload_json(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True))
