"""Registry API serializers. Writes go through `registry.services`; stage is read-only."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from lineage.models import Run
from registry import services
from registry.api.base import FixedFieldsMixin, VisibleRelatedField, VisibleSlugRelatedField
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    Project,
    RegisteredModel,
    RiskItem,
)
from registry.validators import validate_acceptance_criteria


def _actor(serializer):
    return serializer.context["request"].user


def _reason(serializer) -> str:
    return serializer.context["request"].data.get("change_reason", "") or ""


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
    )
    owner_name = serializers.SerializerMethodField()
    acceptance_criteria = serializers.JSONField(
        required=False, validators=[validate_acceptance_criteria]
    )

    class Meta:
        model = Project
        fields = [
            "key",
            "name",
            "description",
            "business_objective",
            "intended_use",
            "out_of_scope_uses",
            "risk_tier",
            "owner",
            "owner_name",
            "acceptance_criteria",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_owner_name(self, project) -> str:
        return project.owner.get_full_name() or project.owner.get_username()

    def validate_key(self, value):
        if self.instance is not None and value != self.instance.key:
            raise serializers.ValidationError("a project's key cannot be changed")
        return value

    def create(self, validated_data):
        return services.create_project(actor=_actor(self), reason=_reason(self), **validated_data)

    def update(self, instance, validated_data):
        validated_data.pop("key", None)
        return services.update_project(
            instance, actor=_actor(self), reason=_reason(self), **validated_data
        )


class RiskItemSerializer(FixedFieldsMixin, serializers.ModelSerializer):
    project = VisibleSlugRelatedField(model=Project, slug_field="key")
    fixed_fields = ("project",)
    fixed_message = "a risk cannot move between projects"

    class Meta:
        model = RiskItem
        fields = [
            "id",
            "project",
            "description",
            "likelihood",
            "impact",
            "mitigation",
            "detection",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def create(self, validated_data):
        project = validated_data.pop("project")
        return services.add_risk(
            project, actor=_actor(self), reason=_reason(self), **validated_data
        )

    def update(self, instance, validated_data):
        return services.update_risk(
            instance, actor=_actor(self), reason=_reason(self), **self.changeable(validated_data)
        )


class RegisteredModelSerializer(FixedFieldsMixin, serializers.ModelSerializer):
    project = VisibleSlugRelatedField(model=Project, slug_field="key")
    fixed_fields = ("project", "name", "task_type")
    latest_version = serializers.IntegerField(source="last_version", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "project",
            "name",
            "description",
            "task_type",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The action refuses a duplicate name with a message on `name` (not DRF's
        # non-field "must make a unique set").
        validators: list = []

    def create(self, validated_data):
        project = validated_data.pop("project")
        return services.register_model(
            project, actor=_actor(self), reason=_reason(self), **validated_data
        )

    def update(self, instance, validated_data):
        return services.update_model(
            instance, actor=_actor(self), reason=_reason(self), **self.changeable(validated_data)
        )


class ModelVersionSerializer(FixedFieldsMixin, serializers.ModelSerializer):
    fixed_fields = ("registered_model", "artifact_uri", "artifact_sha256", "run", "derived_from")
    registered_model = VisibleRelatedField(model=RegisteredModel)
    project = serializers.CharField(source="registered_model.project.key", read_only=True)
    model_name = serializers.CharField(source="registered_model.name", read_only=True)
    run = VisibleRelatedField(model=Run, required=False, allow_null=True)
    derived_from = VisibleRelatedField(model=ModelVersion, required=False, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "registered_model",
            "project",
            "model_name",
            "version",
            "stage",
            "artifact_uri",
            "artifact_sha256",
            "framework",
            "description",
            "intended_use",
            "factors",
            "limitations",
            "ethical_considerations",
            "caveats",
            "run",
            "derived_from",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["version", "stage", "created_at", "updated_at"]

    def validate(self, attrs):
        if "stage" in self.initial_data:
            raise serializers.ValidationError(
                {"stage": "the stage changes only through a transition request"}
            )
        return super().validate(attrs)

    def create(self, validated_data):
        model = validated_data.pop("registered_model")
        return services.register_model_version(
            model, actor=_actor(self), reason=_reason(self), **validated_data
        )

    def update(self, instance, validated_data):
        return services.update_model_version(
            instance, actor=_actor(self), reason=_reason(self), **self.changeable(validated_data)
        )


class DatasetSerializer(FixedFieldsMixin, serializers.ModelSerializer):
    project = VisibleSlugRelatedField(model=Project, slug_field="key")
    fixed_fields = ("project", "name")
    latest_version = serializers.IntegerField(source="last_version", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "description",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The action refuses a duplicate name with a message on `name` (not DRF's
        # non-field "must make a unique set").
        validators: list = []

    def create(self, validated_data):
        project = validated_data.pop("project")
        return services.register_dataset(
            project, actor=_actor(self), reason=_reason(self), **validated_data
        )

    def update(self, instance, validated_data):
        return services.update_dataset(
            instance, actor=_actor(self), reason=_reason(self), **self.changeable(validated_data)
        )


class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset = VisibleRelatedField(model=Dataset)
    project = serializers.CharField(source="dataset.project.key", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "project",
            "dataset_name",
            "version",
            "uri",
            "content_sha256",
            "row_count",
            "schema",
            "split",
            "motivation",
            "composition",
            "collection_process",
            "preprocessing",
            "known_biases",
            "sensitive_attributes",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["version", "created_at"]
        # Idempotency is decided by the action (same hash → same version), not by DRF.
        validators: list = []

    def create(self, validated_data):
        dataset = validated_data.pop("dataset")
        version, created = services.register_dataset_version(
            dataset, actor=_actor(self), reason=_reason(self), **validated_data
        )
        self.created = created
        return version


class EvaluationSerializer(serializers.ModelSerializer):
    model_version = VisibleRelatedField(model=ModelVersion)
    dataset_version = VisibleRelatedField(model=DatasetVersion)
    project = serializers.CharField(
        source="model_version.registered_model.project.key", read_only=True
    )
    predictions = serializers.FileField(required=False, write_only=True)
    metrics = serializers.JSONField(required=False)
    baselines = serializers.JSONField(required=False)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "model_version",
            "dataset_version",
            "project",
            "metrics",
            "baselines",
            "predictions",
            "predictions_sha256",
            "notes",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["predictions_sha256", "created_at"]

    def create(self, validated_data):
        return services.record_evaluation(
            validated_data.pop("model_version"),
            validated_data.pop("dataset_version"),
            actor=_actor(self),
            reason=_reason(self),
            **validated_data,
        )
