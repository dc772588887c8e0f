"""Query-string filters of the registry's list endpoints."""

import django_filters

from registry.choices import Split, Stage
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    RegisteredModel,
    RiskItem,
)


class RegisteredModelFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = RegisteredModel
        fields = ["project", "task_type", "name"]


class ModelVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="registered_model__project__key")
    model = django_filters.NumberFilter(field_name="registered_model_id")
    model_name = django_filters.CharFilter(field_name="registered_model__name")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)

    class Meta:
        model = ModelVersion
        fields = ["project", "model", "model_name", "stage", "version", "run", "derived_from"]


class DatasetFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = Dataset
        fields = ["project", "name"]


class DatasetVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="dataset__project__key")
    split = django_filters.ChoiceFilter(choices=Split.choices)

    class Meta:
        model = DatasetVersion
        fields = ["project", "dataset", "split", "content_sha256", "version"]


class EvaluationFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="model_version__registered_model__project__key")

    class Meta:
        model = Evaluation
        fields = ["project", "model_version", "dataset_version"]


class RiskItemFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = RiskItem
        fields = ["project", "status", "impact", "likelihood"]
