"""Query-string filters of the registry's list endpoints.

References to other records filter by id (`NumberFilter`), never by django-filter's default
`ModelChoiceFilter`: that one validates the id against every row of the table, so a 400 for
an unknown id and a 200 for an invisible one would tell an outsider which ids exist.
"""

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
    run = django_filters.NumberFilter(field_name="run_id")
    derived_from = django_filters.NumberFilter(field_name="derived_from_id")

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
    dataset = django_filters.NumberFilter(field_name="dataset_id")
    split = django_filters.ChoiceFilter(choices=Split.choices)

    class Meta:
        model = DatasetVersion
        fields = ["project", "dataset", "split", "content_sha256", "version"]


class EvaluationFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="model_version__registered_model__project__key")
    model_version = django_filters.NumberFilter(field_name="model_version_id")
    dataset_version = django_filters.NumberFilter(field_name="dataset_version_id")

    class Meta:
        model = Evaluation
        fields = ["project", "model_version", "dataset_version"]


class RiskItemFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = RiskItem
        fields = ["project", "status", "impact", "likelihood"]
