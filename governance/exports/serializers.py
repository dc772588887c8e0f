"""API shapes of document exports."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from governance.choices import ExportKind
from governance.models import DocumentExport
from registry.models import Project


class ExportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExportKind.choices)
    subject = serializers.JSONField(
        help_text='dossier: a model version id; audit_trail: {"project": key, "since", "until"} '
        "(ISO 8601, optional) or a project key; fairness: a fairness audit id."
    )


class DocumentExportSerializer(serializers.ModelSerializer):
    document_id = serializers.CharField(read_only=True)
    project: "serializers.SlugRelatedField[Project]" = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    download_url = serializers.SerializerMethodField()
    verify_url = serializers.SerializerMethodField()

    class Meta:
        model = DocumentExport
        fields = [
            "id",
            "document_id",
            "kind",
            "subject",
            "project",
            "requested_by_name",
            "created_at",
            "started_at",
            "completed_at",
            "status",
            "progress",
            "error",
            "sha256",
            "size",
            "pages",
            "record_sha256",
            "chain_head_sequence",
            "chain_head_hash",
            "download_url",
            "verify_url",
        ]
        read_only_fields = fields

    def _url(self, name: str, export) -> str | None:
        if not export.is_done:
            return None
        return reverse(name, args=[export.pk], request=self.context.get("request"))

    def get_download_url(self, export) -> str | None:
        return self._url("documentexport-download", export)

    def get_verify_url(self, export) -> str | None:
        return self._url("documentexport-verify", export)


class FileCheckSerializer(serializers.Serializer):
    export = serializers.IntegerField()
    document_id = serializers.CharField()
    matches = serializers.BooleanField()
    sha256_recorded = serializers.CharField()
    sha256_actual = serializers.CharField(allow_null=True)
    size_recorded = serializers.IntegerField(allow_null=True)
    size_actual = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()
