"""`/api/v1/fairness-audits/`: request an audit (202, runs as a task) and read its result."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from governance.fairness import audits
from governance.models import FairnessAudit
from registry.api.base import VisibleRelatedField, as_drf_error, require_right
from registry.choices import ProjectRight
from registry.models import DatasetVersion, ModelVersion


class FairnessAuditSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="model_version.registered_model.project.key")
    predictions_dataset_version = serializers.IntegerField(source="predictions_version_id")

    class Meta:
        model = FairnessAudit
        fields = [
            "id",
            "project",
            "model_version",
            "dataset_version",
            "predictions_dataset_version",
            "predictions_sha256",
            "status",
            "progress",
            "error",
            "passed",
            "config",
            "config_sha256",
            "library_versions",
            "result",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields


class FairnessAuditRequestSerializer(serializers.Serializer):
    model_version = VisibleRelatedField(model=ModelVersion)
    file = serializers.FileField(required=False)
    dataset_version = VisibleRelatedField(
        model=DatasetVersion,
        required=False,
        help_text="A predictions dataset version uploaded earlier (instead of a file).",
    )
    evaluated_dataset_version = VisibleRelatedField(
        model=DatasetVersion,
        required=False,
        help_text="The evaluated data the predictions are about; defaults to the version's "
        "latest evaluation on the policy's required split.",
    )
    sensitive_features = serializers.CharField(
        required=False,
        help_text="Comma-separated; defaults to the policy's, else the "
        "datasheet's sensitive attributes.",
    )

    def validate(self, attrs):
        if bool(attrs.get("file")) == bool(attrs.get("dataset_version")):
            raise serializers.ValidationError(
                {"file": "give either a predictions file or a dataset_version, not both"}
            )
        return attrs


class FairnessAuditViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["model_version", "dataset_version", "status", "passed"]

    def get_queryset(self):
        return FairnessAudit.objects.visible_to(
            self.request.user, ProjectRight.VIEW
        ).select_related("model_version__registered_model__project")

    def get_serializer_class(self):
        return (
            FairnessAuditRequestSerializer if self.action == "create" else FairnessAuditSerializer
        )

    @extend_schema(
        request=FairnessAuditRequestSerializer,
        responses={202: FairnessAuditSerializer, 200: FairnessAuditSerializer},
    )
    def create(self, request, *args, **kwargs):
        data = FairnessAuditRequestSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = values["model_version"]
        if not request.user.has_perm("governance.add_fairnessaudit"):
            raise PermissionDenied("Your role does not allow you to request fairness audits.")
        require_right(request.user, version.project, ProjectRight.CONTRIBUTE)
        features = [f.strip() for f in values.get("sensitive_features", "").split(",") if f.strip()]
        try:
            audit, created = audits.request_audit(
                version,
                actor=request.user,
                upload=values.get("file"),
                predictions_version=values.get("dataset_version"),
                dataset_version=values.get("evaluated_dataset_version"),
                sensitive_features=features or None,
            )
        except ValidationError as exc:
            raise as_drf_error(exc) from None
        audit = get_object_or_404(self.get_queryset(), pk=audit.pk)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(FairnessAuditSerializer(audit).data, status=code)
