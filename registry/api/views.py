"""Registry API endpoints: thin views over the actions, scoped by project rights."""

from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from registry.api import filters, serializers
from registry.api.base import ScopedViewSet, require_right
from registry.choices import ProjectRight
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    Project,
    RegisteredModel,
    RiskItem,
)

READ_AND_CREATE = ["get", "post", "head", "options"]


class ProjectViewSet(ScopedViewSet):
    """Projects: anyone may list those they can see; creating one needs the add_project
    permission (the creator owns it); changing one needs the project's `manage` right."""

    model = Project
    serializer_class = serializers.ProjectSerializer
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9-]+"
    filterset_fields = ["risk_tier"]
    search_fields = ["key", "name", "description"]
    ordering_fields = ["key", "name", "created_at", "updated_at"]
    write_right = ProjectRight.MANAGE

    def optimize(self, queryset):
        return queryset.select_related("owner")

    def perform_create(self, serializer):
        self.require_role_permission("add")
        self.save_through_action(serializer)

    def perform_update(self, serializer):
        require_right(self.request.user, serializer.instance, self.write_right)
        self.save_through_action(serializer)


class RiskItemViewSet(ScopedViewSet):
    model = RiskItem
    serializer_class = serializers.RiskItemSerializer
    filterset_class = filters.RiskItemFilter
    search_fields = ["description", "mitigation", "detection"]
    ordering_fields = ["id", "created_at", "impact", "likelihood"]

    def optimize(self, queryset):
        return queryset.select_related("project")

    def project_of_new(self, serializer):
        return serializer.validated_data["project"]


class RegisteredModelViewSet(ScopedViewSet):
    model = RegisteredModel
    serializer_class = serializers.RegisteredModelSerializer
    filterset_class = filters.RegisteredModelFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def optimize(self, queryset):
        return queryset.select_related("project")

    def project_of_new(self, serializer):
        return serializer.validated_data["project"]


class ModelVersionViewSet(ScopedViewSet):
    model = ModelVersion
    serializer_class = serializers.ModelVersionSerializer
    filterset_class = filters.ModelVersionFilter
    search_fields = ["registered_model__name", "description"]
    ordering_fields = ["version", "created_at", "updated_at", "stage"]

    def optimize(self, queryset):
        return queryset.select_related("registered_model__project", "created_by")

    def project_of_new(self, serializer):
        return serializer.validated_data["registered_model"].project


class DatasetViewSet(ScopedViewSet):
    model = Dataset
    serializer_class = serializers.DatasetSerializer
    filterset_class = filters.DatasetFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def optimize(self, queryset):
        return queryset.select_related("project")

    def project_of_new(self, serializer):
        return serializer.validated_data["project"]


class DatasetVersionViewSet(ScopedViewSet):
    """Dataset versions are immutable. Registering known content answers 200 with the
    existing version instead of 201 (idempotent registration)."""

    model = DatasetVersion
    serializer_class = serializers.DatasetVersionSerializer
    filterset_class = filters.DatasetVersionFilter
    search_fields = ["dataset__name", "uri", "content_sha256"]
    ordering_fields = ["version", "created_at", "row_count"]
    http_method_names = READ_AND_CREATE

    def optimize(self, queryset):
        return queryset.select_related("dataset__project", "created_by")

    def project_of_new(self, serializer):
        return serializer.validated_data["dataset"].project

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        code = status.HTTP_201_CREATED if serializer.created else status.HTTP_200_OK
        return Response(serializer.data, status=code)


class EvaluationViewSet(ScopedViewSet):
    """Evaluations are immutable; uploading predictions computes the metrics and baselines."""

    model = Evaluation
    serializer_class = serializers.EvaluationSerializer
    filterset_class = filters.EvaluationFilter
    search_fields = ["notes", "model_version__registered_model__name"]
    ordering_fields = ["created_at"]
    http_method_names = READ_AND_CREATE
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def optimize(self, queryset):
        return queryset.select_related("model_version__registered_model__project", "created_by")

    def project_of_new(self, serializer):
        return serializer.validated_data["model_version"].project
