"""Query-string filters of the registry's list endpoints.

References to other records filter by id (`IdFilter`), never by django-filter's default
`ModelChoiceFilter`: that one validates the id against every row of the table, so a 400 for
an unknown id and a 200 for an invisible one would tell an outsider which ids exist.
"""

import django_filters
from django import forms

from registry.choices import Split, Stage
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    RegisteredModel,
    RiskItem,
)


class IdFilter(django_filters.NumberFilter):
    """A reference to another record by its id: a whole number from 1 to the largest id a
    column can hold, else a 400 naming the parameter (SQLite cannot even compare a larger
    number with a column, and an out-of-range value is no record's id anyway)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class RegisteredModelFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = RegisteredModel
        fields = ["project", "task_type", "name"]


class ModelVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="registered_model__project__key")
    model = IdFilter(field_name="registered_model_id")
    model_name = django_filters.CharFilter(field_name="registered_model__name")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    run = IdFilter(field_name="run_id")
    derived_from = IdFilter(field_name="derived_from_id")

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
    dataset = IdFilter(field_name="dataset_id")
    split = django_filters.ChoiceFilter(choices=Split.choices)

    class Meta:
        model = DatasetVersion
        fields = ["project", "dataset", "split", "content_sha256", "version"]


class EvaluationFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="model_version__registered_model__project__key")
    model_version = IdFilter(field_name="model_version_id")
    dataset_version = IdFilter(field_name="dataset_version_id")

    class Meta:
        model = Evaluation
        fields = ["project", "model_version", "dataset_version"]


class RiskItemFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__key")

    class Meta:
        model = RiskItem
        fields = ["project", "status", "impact", "likelihood"]
