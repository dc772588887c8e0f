"""`/api/v1/monitoring/...`: reference data, production batches (202, checked in a task),
the retraining tickets breaches open, and `/api/v1/change-control-plans/`."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from governance import audit_chain
from governance.api.serializers import PasswordSerializer, SignatureSerializer
from governance.choices import AuditAction
from governance.models import (
    ChangeControlPlan,
    CheckStatus,
    MonitoringReference,
    MonitoringReport,
    MonitoringSchedule,
    RetrainingTicket,
)
from governance.monitoring import checks, plans
from registry.api.base import (
    VisibleRelatedField,
    VisibleSlugRelatedField,
    as_drf_error,
    require_right,
)
from registry.choices import ProjectRight
from registry.models import ModelVersion, Project, RegisteredModel

PROJECT = "model_version__registered_model__project"


def require_role(user, permission: str, doing: str) -> None:
    """403 unless the user's role holds `permission` (the project right is checked apart)."""
    if not user.has_perm(permission):
        raise PermissionDenied(f"Your role does not allow you to {doing}.")


class MonitoringReferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoringReference
        fields = [
            "id",
            "model_version",
            "dataset_version",
            "sha256",
            "row_count",
            "columns",
            "created_at",
        ]
        read_only_fields = fields


# Inline enum: CheckStatus has the fairness audit's values, and a shared component name for
# both would need an ENUM_NAME_OVERRIDES entry in the settings.
@extend_schema_field({"type": "string", "enum": CheckStatus.values})
class CheckStatusField(serializers.CharField):
    pass


class MonitoringReportSerializer(serializers.ModelSerializer):
    breaches = serializers.SerializerMethodField()
    status = CheckStatusField(read_only=True)

    class Meta:
        model = MonitoringReport
        fields = [
            "id",
            "model_version",
            "reference_dataset_version",
            "batch_sha256",
            "source",
            "row_count",
            "status",
            "progress",
            "error",
            "levels",
            "breached",
            "breaches",
            "data_drift",
            "prediction_drift",
            "performance",
            "fairness_drift",
            "thresholds",
            "scheduled",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_breaches(self, report) -> list[dict]:
        return [{"kind": b.kind, "actions": b.actions} for b in report.breaches.all()]


class RetrainingTicketSerializer(serializers.ModelSerializer):
    class Meta:
        model = RetrainingTicket
        fields = ["id", "model_version", "report", "reason", "status", "created_at"]
        read_only_fields = fields


class UploadSerializer(serializers.Serializer):
    model_version = VisibleRelatedField(model=ModelVersion)
    file = serializers.FileField(help_text="CSV or Parquet.")


class SummaryStatisticsSerializer(serializers.Serializer):
    """The shape is checked by the action, which names the exact field at fault; see
    governance/monitoring/summary.py for the whole format."""

    model_version = VisibleRelatedField(model=ModelVersion)
    row_count = serializers.IntegerField(help_text="Rows the statistics summarise.")
    features = serializers.JSONField(
        help_text='Per feature: {"edges": [e1, ..., ek], "counts": [k + 1 counts], "missing": n} '
        '(numeric; without edges, on the reference\'s bins) or {"counts": {"category": n}, '
        '"missing": n} (categorical). Every feature of the reference, each adding up to '
        "row_count."
    )
    prediction = serializers.JSONField(
        required=False,
        help_text='The model\'s output counted the same way, with "column": "y_score" or "y_pred".',
    )
    performance = serializers.JSONField(
        required=False,
        help_text='{"confusion": {"tp", "fp", "fn", "tn"}} (binary) or '
        '{"metrics": {"accuracy": 0.9, ...}, "n": labelled rows}.',
    )


class ReferenceBinsSerializer(serializers.Serializer):
    reference = serializers.IntegerField()
    model_version = serializers.IntegerField()
    dataset_version = serializers.IntegerField()
    bins = serializers.IntegerField(help_text="Quantile bins per numeric column.")
    features = serializers.DictField(
        child=serializers.JSONField(),
        help_text='{"kind": "numeric", "edges": [...]} or {"kind": "categorical", '
        '"categories": [...]} per feature.',
    )
    outputs = serializers.DictField(child=serializers.JSONField())


class _UploadViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["model_version"]
    # Set by each subclass: a model whose manager has visible_to(), and the action that
    # records an upload (model_version, file, *, actor) -> record.
    model: Any
    action_function: Callable[..., Any]

    def get_queryset(self):
        return self.model.objects.visible_to(self.request.user, ProjectRight.VIEW).select_related(
            PROJECT
        )

    def get_serializer_class(self):
        return UploadSerializer if self.action == "create" else self.output_serializer

    def create(self, request, *args, **kwargs):
        data = UploadSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        version = data.validated_data["model_version"]
        # Roles say what, rights say where: both are needed.
        require_role(request.user, "governance.add_monitoringreport", "upload monitoring data")
        require_right(request.user, version.project, ProjectRight.CONTRIBUTE)
        try:
            record = type(self).action_function(
                version, data.validated_data["file"], actor=request.user
            )
        except ValidationError as exc:
            raise as_drf_error(exc) from None
        record = get_object_or_404(self.get_queryset(), pk=record.pk)
        return Response(self.output_serializer(record).data, status=self.created_status)


class MonitoringReferenceViewSet(_UploadViewSet):
    """Register the validation data's feature values of a model version (once)."""

    model = MonitoringReference
    output_serializer = MonitoringReferenceSerializer
    action_function = checks.register_reference
    created_status = status.HTTP_201_CREATED

    @extend_schema(request=UploadSerializer, responses={201: MonitoringReferenceSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(responses=ReferenceBinsSerializer)
    @action(detail=True, methods=["get"])
    def bins(self, request, pk=None):
        """Each column's kind and bins as the drift check sees them: count a batch on these
        numeric edges (right-closed, open ends) to send it as summary statistics."""
        reference = self.get_object()
        profile = checks.profile_of(reference)
        return Response(
            {
                "reference": reference.pk,
                "model_version": reference.model_version_id,
                "dataset_version": reference.dataset_version_id,
                **profile,
            }
        )


class MonitoringReportViewSet(_UploadViewSet):
    """Upload a production batch of a production or staging version; it is checked in a task."""

    model = MonitoringReport
    output_serializer = MonitoringReportSerializer
    action_function = checks.submit_batch
    created_status = status.HTTP_202_ACCEPTED
    filterset_fields = ["model_version", "status"]

    def get_queryset(self):
        return super().get_queryset().prefetch_related("breaches")

    @extend_schema(request=UploadSerializer, responses={202: MonitoringReportSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(request=SummaryStatisticsSerializer, responses={202: MonitoringReportSerializer})
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def summary(self, request):
        """A production batch as summary statistics instead of rows (counts per bin and
        category, optionally a confusion matrix or metric values); checked in a task."""
        data = SummaryStatisticsSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        version = data.validated_data.pop("model_version")
        require_role(request.user, "governance.add_monitoringreport", "upload monitoring data")
        require_right(request.user, version.project, ProjectRight.CONTRIBUTE)
        body = {k: v for k, v in request.data.items() if k != "model_version"}
        try:
            report = checks.submit_summary(version, body, actor=request.user)
        except ValidationError as exc:
            raise as_drf_error(exc) from None
        report = get_object_or_404(self.get_queryset(), pk=report.pk)
        return Response(MonitoringReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)


class RetrainingTicketViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RetrainingTicketSerializer
    filterset_fields = ["model_version", "status"]

    def get_queryset(self):
        return RetrainingTicket.objects.visible_to(
            self.request.user, ProjectRight.VIEW
        ).select_related(PROJECT)


class ChangeControlPlanSerializer(serializers.ModelSerializer):
    """A plan version with its signatures (read from `Signature`), each saying whether the plan
    still matches what was signed; `approved_by_name`, `approved_at` and `record_sha256` are
    the approving signature's."""

    project: "serializers.SlugRelatedField[Project]" = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    current_record_sha256 = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()
    approved_by_name = serializers.SerializerMethodField()
    approved_at = serializers.SerializerMethodField()
    record_sha256 = serializers.SerializerMethodField()

    class Meta:
        model = ChangeControlPlan
        fields = [
            "id",
            "project",
            "version",
            "status",
            "description",
            "allowed_modifications",
            "protocol",
            "impact_assessment",
            "created_at",
            "approved_by_name",
            "approved_at",
            "record_sha256",
            "current_record_sha256",
            "signatures",
        ]
        read_only_fields = fields

    def get_current_record_sha256(self, plan) -> str:
        cache = self.context.setdefault("_plan_sha", {})
        if plan.pk not in cache:
            cache[plan.pk] = plans.current_record_sha256(plan)
        return cache[plan.pk]

    @extend_schema_field(SignatureSerializer(many=True))
    def get_signatures(self, plan) -> list[dict]:
        context = {**self.context, "current_sha": self.get_current_record_sha256(plan)}
        # many=True makes a list serializer, whose data is a list; the stubs cannot tell.
        return SignatureSerializer(  # type: ignore[return-value]
            plan.signatures.all(), many=True, context=context
        ).data

    def get_approved_by_name(self, plan) -> str:
        return plan.approval.printed_name if plan.approval else ""

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_approved_at(self, plan):
        return plan.approval.signed_at if plan.approval else None

    def get_record_sha256(self, plan) -> str:
        return plan.approval.record_sha256 if plan.approval else ""


class ChangeControlPlanRequestSerializer(serializers.Serializer):
    project = VisibleSlugRelatedField(model=Project, slug_field="key")
    description = serializers.CharField()
    allowed_modifications = serializers.JSONField(default=dict)
    protocol = serializers.JSONField(default=dict)
    impact_assessment = serializers.CharField()


class ChangeControlPlanViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """A project's change-control plans: contributors propose versions, a compliance officer
    approves one with their signature."""

    filterset_fields = ["status"]

    def get_queryset(self):
        return (
            ChangeControlPlan.objects.visible_to(self.request.user, ProjectRight.VIEW)
            .select_related("project")
            .prefetch_related("signatures__signer")
        )

    def get_serializer_class(self):
        if self.action == "create":
            return ChangeControlPlanRequestSerializer
        if self.action == "approve":
            return PasswordSerializer
        return ChangeControlPlanSerializer

    @extend_schema(
        request=ChangeControlPlanRequestSerializer, responses={201: ChangeControlPlanSerializer}
    )
    def create(self, request, *args, **kwargs):
        data = ChangeControlPlanRequestSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        require_role(
            request.user, "governance.add_changecontrolplan", "propose change-control plans"
        )
        require_right(request.user, values["project"], ProjectRight.CONTRIBUTE)
        plan = plans.propose_plan(values.pop("project"), actor=request.user, **values)
        plan = self.get_queryset().get(pk=plan.pk)
        return Response(ChangeControlPlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PasswordSerializer, responses=ChangeControlPlanSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        plan = self.get_object()
        data = PasswordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_role(request.user, "governance.change_changecontrolplan", "approve plans")
        plan = plans.approve_plan(
            plan, signer=request.user, http_request=request._request, **data.validated_data
        )
        return Response(ChangeControlPlanSerializer(self.get_queryset().get(pk=plan.pk)).data)


class MonitoringScheduleSerializer(serializers.ModelSerializer):
    registered_model = VisibleRelatedField(model=RegisteredModel)
    interval_hours = serializers.IntegerField(min_value=1, max_value=24 * 366)

    class Meta:
        model = MonitoringSchedule
        fields = ["id", "registered_model", "interval_hours", "last_run"]
        read_only_fields = ["last_run"]


class MonitoringScheduleViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """How often a model's production versions are re-checked (one schedule per model)."""

    serializer_class = MonitoringScheduleSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return MonitoringSchedule.objects.visible_to(
            self.request.user, ProjectRight.VIEW
        ).select_related("registered_model__project")

    def perform_create(self, serializer):
        model = serializer.validated_data["registered_model"]
        require_role(
            self.request.user, "governance.add_monitoringschedule", "set monitoring schedules"
        )
        require_right(self.request.user, model.project, ProjectRight.MANAGE)
        if MonitoringSchedule.objects.filter(registered_model=model).exists():
            raise serializers.ValidationError(
                {"registered_model": f"{model} already has a schedule; change it instead"}
            )
        schedule = serializer.save()
        audit_chain.record(
            AuditAction.RECORD_CREATED,
            target=schedule,
            actor=self.request.user,
            after={"interval_hours": schedule.interval_hours},
            project_id=model.project_id,
            reason="monitoring schedule set",
        )

    def perform_update(self, serializer):
        require_role(
            self.request.user, "governance.change_monitoringschedule", "change monitoring schedules"
        )
        require_right(
            self.request.user, serializer.instance.registered_model.project, ProjectRight.MANAGE
        )
        if serializer.validated_data.get(
            "registered_model", serializer.instance.registered_model
        ) != (serializer.instance.registered_model):
            raise serializers.ValidationError({"registered_model": "a schedule cannot move"})
        before = serializer.instance.interval_hours
        schedule = serializer.save()
        audit_chain.record(
            AuditAction.RECORD_UPDATED,
            target=schedule,
            actor=self.request.user,
            before={"interval_hours": before},
            after={"interval_hours": schedule.interval_hours},
            project_id=schedule.registered_model.project_id,
            reason="monitoring schedule changed",
        )
