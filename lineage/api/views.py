"""Lineage API endpoints for code versions and runs."""

import django_filters

from lineage.api import serializers
from lineage.models import CodeVersion, Run
from registry.api.base import ScopedViewSet
from registry.api.filters import IdFilter


class CodeVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = CodeVersion
        fields = ["project", "repository_url", "commit_sha", "branch", "dirty"]


class RunFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")
    # By id, not ModelChoiceFilter: see registry/api/filters.py (no existence oracle).
    code_version = IdFilter(field_name="code_version_id")
    parent = IdFilter(field_name="parent_id")

    class Meta:
        model = Run
        fields = ["project", "kind", "status", "code_version", "parent", "name"]


class CodeVersionViewSet(ScopedViewSet):
    """Code versions are immutable; registering an identical one returns it."""

    model = CodeVersion
    serializer_class = serializers.CodeVersionSerializer
    filterset_class = CodeVersionFilter
    search_fields = ["repository_url", "commit_sha", "branch", "path"]
    ordering_fields = ["created_at"]
    http_method_names = ["get", "post", "head", "options"]

    def optimize(self, queryset):
        return queryset.select_related("project")

    def project_of_new(self, serializer):
        return serializer.validated_data["project"]


class RunViewSet(ScopedViewSet):
    """Runs: recorded once; later only their status, end, metrics and outputs change."""

    model = Run
    serializer_class = serializers.RunSerializer
    filterset_class = RunFilter
    search_fields = ["name"]
    ordering_fields = ["created_at", "started_at", "ended_at"]

    def optimize(self, queryset):
        return queryset.select_related("project", "created_by").prefetch_related(
            "input_datasets", "output_datasets", "input_models", "model_versions"
        )

    def project_of_new(self, serializer):
        return serializer.validated_data["project"]
