"""Admin pages for code versions and runs (read-only: they arrive through the API)."""

from django.contrib import admin

from lineage.models import CodeVersion, Run
from registry.admin import ImmutableAdmin, VisibleRelatedFilter


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
