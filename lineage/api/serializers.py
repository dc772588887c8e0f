"""Lineage API serializers: code versions and runs, written through `lineage.services`."""

from rest_framework import serializers

from lineage import services
from lineage.models import CodeVersion, Run
from registry.api.base import FixedFieldsMixin, VisibleRelatedField, VisibleSlugRelatedField
from registry.models import DatasetVersion, ModelVersion, Project


def _actor(serializer):
    return serializer.context["request"].user


def _reason(serializer) -> str:
    return serializer.context["request"].data.get("change_reason", "") or ""


class CodeVersionSerializer(serializers.ModelSerializer):
    project = VisibleSlugRelatedField(model=Project, slug_field="key")

    class Meta:
        model = CodeVersion
        fields = [
            "id",
            "project",
            "repository_url",
            "commit_sha",
            "branch",
            "path",
            "dirty",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        validators: list = []  # the action reuses an identical code version instead of refusing it

    def create(self, validated_data):
        project = validated_data.pop("project")
        return services.register_code_version(
            project, actor=_actor(self), reason=_reason(self), **validated_data
        )


class RunSerializer(FixedFieldsMixin, serializers.ModelSerializer):
    fixed_fields = (
        "project",
        "name",
        "kind",
        "code_version",
        "parent",
        "parameters",
        "environment",
    )
    fixed_message = "cannot be changed after the run is recorded"
    project = VisibleSlugRelatedField(model=Project, slug_field="key")
    code_version = VisibleRelatedField(model=CodeVersion, required=False, allow_null=True)
    # DRF's metaclass moves declared fields off the class: no clash with Field.parent.
    parent = VisibleRelatedField(  # type: ignore[assignment]
        model=Run, required=False, allow_null=True
    )
    input_datasets = VisibleRelatedField(model=DatasetVersion, many=True, required=False)
    output_datasets = VisibleRelatedField(model=DatasetVersion, many=True, required=False)
    input_models = VisibleRelatedField(model=ModelVersion, many=True, required=False)
    output_models: serializers.Field = serializers.PrimaryKeyRelatedField(
        source="model_versions", many=True, read_only=True
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "status",
            "external_id",
            "parent",
            "code_version",
            "parameters",
            "environment",
            "metrics",
            "started_at",
            "ended_at",
            "input_datasets",
            "output_datasets",
            "input_models",
            "output_models",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["external_id", "created_at", "updated_at"]

    def create(self, validated_data):
        project = validated_data.pop("project")
        return services.create_run(
            project, actor=_actor(self), reason=_reason(self), **validated_data
        )

    def update(self, instance, validated_data):
        return services.update_run(
            instance, actor=_actor(self), reason=_reason(self), **self.changeable(validated_data)
        )
