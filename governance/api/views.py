"""Governance API: transition requests and signatures, the audit trail, policies.

Views check visibility (404) and call the actions, which check the rest (403/409).
"""

import django_filters
from django.db.models import Q, prefetch_related_objects
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import audit_chain, policies, transitions
from governance.api import serializers
from governance.models import AuditEvent, LifecyclePolicy, TransitionRequest
from registry.access import has_project_right
from registry.api.base import find_visible
from registry.api.filters import IdFilter
from registry.choices import ProjectRight
from registry.models import ModelVersion, Project
from registry.prepared import PreparedQuery

REQUEST_RELATED = ("model_version__registered_model__project", "requested_by", "policy")
_REQUEST_BY_PK = PreparedQuery(
    lambda pk: TransitionRequest.objects.select_related(*REQUEST_RELATED).filter(pk=pk),
    TransitionRequest,
)


class TransitionRequestFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="model_version__registered_model__project__key")
    signable = django_filters.BooleanFilter(
        method="filter_signable", label="Pending requests I may sign"
    )

    class Meta:
        model = TransitionRequest
        fields = ["status", "project", "model_version", "to_stage", "from_stage", "requested_by"]

    def filter_signable(self, queryset, name, value):
        if not value:
            return queryset
        user = self.request.user
        reviewable = TransitionRequest.objects.visible_to(user, ProjectRight.REVIEW)
        return (
            queryset.filter(pk__in=reviewable.values("pk"), status="pending")
            .exclude(requested_by=user)
            .exclude(signatures__signer=user)
        )


class TransitionRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Transition requests of the projects the user can see, oldest first."""

    serializer_class = serializers.TransitionRequestSerializer
    filterset_class = TransitionRequestFilter
    ordering_fields = ["created_at", "decided_at"]

    def get_queryset(self):
        return (
            TransitionRequest.objects.visible_to(self.request.user, ProjectRight.VIEW)
            .select_related(*REQUEST_RELATED)
            .prefetch_related("signatures__signer")
        )

    def _respond(self, request_obj, code=status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=request_obj.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(
        request=serializers.SignSerializer, responses=serializers.TransitionRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign with a meaning and the password; approvals that complete the gates apply it."""
        target = self.get_object()
        data = serializers.SignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transitions.sign(
            target, signer=request.user, http_request=request._request, **data.validated_data
        )
        return self._respond(target, status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.WithdrawSerializer, responses=serializers.TransitionRequestSerializer
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        target = self.get_object()
        data = serializers.WithdrawSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transitions.withdraw(
            target, actor=request.user, reason=data.validated_data.get("reason", "")
        )
        return self._respond(target)

    @extend_schema(request=None, responses=serializers.TransitionRequestSerializer)
    @action(detail=True, methods=["post"])
    def evaluate(self, request, pk=None):
        """Re-run the gates (e.g. after new evidence); applies the transition if all pass."""
        target = self.get_object()
        transitions.reevaluate(target, actor=request.user)
        return self._respond(target)


class ModelVersionTransitionsView(APIView):
    """`POST /model-versions/{id}/transitions/` requests a transition; GET lists the version's."""

    @extend_schema(responses=serializers.TransitionRequestSerializer(many=True))
    def get(self, request, pk):
        version = get_object_or_404(ModelVersion.objects.visible_to(request.user), pk=pk)
        requests = (
            TransitionRequest.objects.filter(model_version=version)
            .select_related(*REQUEST_RELATED)
            .prefetch_related("signatures__signer")
        )
        return Response(
            serializers.TransitionRequestSerializer(
                requests, many=True, context={"request": request}
            ).data
        )

    @extend_schema(
        request=serializers.TransitionCreateSerializer,
        responses={201: serializers.TransitionRequestSerializer},
    )
    def post(self, request, pk):
        version = find_visible(ModelVersion, request.user, pk)
        if version is None:
            raise NotFound("No such model version (or it is not visible to you).")
        if not request.user.has_perm("governance.add_transitionrequest"):
            raise PermissionDenied("Your role does not allow you to request transitions.")
        data = serializers.TransitionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = transitions.request_transition(version, actor=request.user, **data.validated_data)
        # Read back, so that the answer (and its record hash) shows what was stored.
        fresh = _REQUEST_BY_PK.get(pk=created.pk)
        prefetch_related_objects([fresh], "signatures__signer")
        return Response(
            serializers.TransitionRequestSerializer(fresh, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class AuditEventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    actor = IdFilter(field_name="actor_id")
    project = django_filters.CharFilter(method="filter_project")

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "object_id", "actor", "since", "until", "project"]

    def filter_project(self, queryset, name, value):
        project = Project.objects.filter(key=value).values("pk")
        return queryset.filter(project_id__in=project)


def readable_events(user):
    """Audit events a user may read: the auditor's or compliance officer's role, and then only
    events of projects where they hold the export right (plus project-less events)."""
    if not user.has_perm("governance.view_auditevent"):
        return AuditEvent.objects.none()
    if user.is_superuser:
        # The one place that decides (Project.objects.visible_to) gives superusers every
        # project: every event, without a subquery that would match them all.
        return AuditEvent.objects.all()
    projects = Project.objects.visible_to(user, ProjectRight.EXPORT).values("pk")
    return AuditEvent.objects.filter(Q(project_id__in=projects) | Q(project_id__isnull=True))


class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit trail, newest first, filtered by object, actor, action and time."""

    serializer_class = serializers.AuditEventSerializer
    filterset_class = AuditEventFilter
    ordering_fields = ["sequence", "occurred_at"]
    ordering = ["-sequence"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no user
            return AuditEvent.objects.none()
        if not self.request.user.has_perm("governance.view_auditevent"):
            raise PermissionDenied("Your role does not allow you to read the audit trail.")
        return readable_events(self.request.user)

    @action(detail=False, methods=["get"])
    def verify(self, request):
        """Recompute the whole chain and name the first broken link, if any."""
        if not request.user.has_perm("governance.view_auditevent"):
            raise PermissionDenied("Your role does not allow you to verify the audit trail.")
        return Response(audit_chain.verify().as_dict())


class PolicyViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Lifecycle policy versions: readable by everyone signed in; compliance officers propose
    and approve new versions; a project's manager binds an approved version."""

    serializer_class = serializers.PolicySerializer
    queryset = LifecyclePolicy.objects.prefetch_related("signatures").order_by("name", "-version")
    filterset_fields = ["name", "risk_tier", "status"]

    def create(self, request, *args, **kwargs):
        # The role is checked before the body: a refusal, not a list of field errors.
        if not request.user.has_perm("governance.add_lifecyclepolicy"):
            raise PermissionDenied("Your role does not allow you to propose policies.")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = policies.propose_policy_version(
            actor=self.request.user,
            name=data["name"],
            risk_tier=data["risk_tier"],
            definition=data["definition"],
            description=data.get("description", ""),
        )

    @extend_schema(request=serializers.PasswordSerializer, responses=serializers.PolicySerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        policy = self.get_object()
        data = serializers.PasswordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policies.approve_policy_version(
            policy, signer=request.user, http_request=request._request, **data.validated_data
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=policy.pk)).data)

    @extend_schema(request=serializers.BindSerializer, responses=serializers.PolicySerializer)
    @action(detail=True, methods=["post"])
    def bind(self, request, pk=None):
        """Make this approved policy version govern a project (needs the manage right)."""
        policy = self.get_object()
        data = serializers.BindSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = get_object_or_404(
            Project.objects.visible_to(request.user), key=data.validated_data["project"]
        )
        if not has_project_right(request.user, project, ProjectRight.MANAGE):
            raise PermissionDenied(f"You need the 'manage' right on {project.key}.")
        policies.bind_policy(project, policy, actor=request.user)
        return Response(self.get_serializer(policy).data)
