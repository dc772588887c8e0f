"""Document export API: request (202), follow, download, verify.

Exports are visible to people holding the `export` right on their project; anyone else gets
404 for them, even someone who may view the project: every document carries audit-trail
content, which the `export` right guards. Reading needs a role that may read exports
(compliance officers, auditors, reviewers); requesting one needs a role that may export
(compliance officers) as well as the right.
"""

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.response import Response

from governance.errors import Conflict
from governance.exports import services, subjects
from governance.exports.serializers import (
    DocumentExportSerializer,
    ExportRequestSerializer,
    FileCheckSerializer,
)
from governance.models import DocumentExport
from registry.choices import ProjectRight

READ_PERMISSIONS = ("governance.view_documentexport", "governance.add_documentexport")


class Gone(APIException):
    status_code = 410
    default_detail = "the stored file is missing"


class DocumentExportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Exported documents of the projects where the user holds the export right."""

    serializer_class = DocumentExportSerializer
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at", "completed_at"]

    def get_queryset(self):
        return DocumentExport.objects.visible_to(
            self.request.user, ProjectRight.EXPORT
        ).select_related("project")

    def require_read_role(self) -> None:
        if not any(self.request.user.has_perm(p) for p in READ_PERMISSIONS):
            raise PermissionDenied("Your role does not allow you to read document exports.")

    def list(self, request, *args, **kwargs):
        self.require_read_role()
        return super().list(request, *args, **kwargs)

    def get_object(self):
        # 404 before 403: the export must be visible before the role is even considered.
        export = super().get_object()
        self.require_read_role()
        return export

    @extend_schema(request=ExportRequestSerializer, responses={202: DocumentExportSerializer})
    def create(self, request):
        """Queue a document; answers 202 with the export to follow at its URL."""
        data = ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = subjects.resolve(
            data.validated_data["kind"], data.validated_data["subject"], request.user
        )
        export = services.request_export(subject, actor=request.user)
        fresh = self.get_queryset().get(pk=export.pk)
        body = self.get_serializer(fresh).data
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{export.pk}/")
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(responses={(200, "application/pdf"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The stored PDF, streamed."""
        export = self.get_object()
        if not export.is_done:
            raise Conflict(f"{export.document_id} is {export.status}; it has no file yet")
        try:
            handle = default_storage.open(export.file.name, "rb")
        except FileNotFoundError:
            # The record says a document was made; its file is gone. Say so plainly.
            raise Gone(
                f"the stored file of {export.document_id} is missing; run its "
                "verification and restore it from backup"
            ) from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"{export.document_id}.pdf",
            content_type="application/pdf",
        )
        response["X-Content-SHA256"] = export.sha256
        return response

    @extend_schema(responses=FileCheckSerializer)
    @action(detail=True, methods=["get"])
    def verify(self, request, pk=None):
        """Re-hash the stored file and say whether it still matches its recorded SHA-256."""
        export = self.get_object()
        return Response(services.verify_export(export).as_dict())
