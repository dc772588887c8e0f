"""POST /api/v1/lineage and /api/v1/lineage/batch: OpenLineage RunEvents in, as
openlineage-python's HTTP transport sends them (JSON, optionally gzip-compressed, with
`Authorization: Bearer <Stagegate token>`)."""

import gzip
import json
import zlib

from rest_framework import status
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from lineage import openlineage

MAX_BODY_BYTES = 20 * 1024 * 1024


class OpenLineageParser(BaseParser):
    """JSON, decompressed first when the client sent `Content-Encoding: gzip`."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        body = stream.read() if stream is not None else b""
        if request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise ParseError("the body is not valid gzip") from None
        if len(body) > MAX_BODY_BYTES:
            raise ParseError(f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"the body is not JSON: {exc}") from None


def post_events(request, *, batch: bool) -> Response:
    """Ingest one event (or, for the batch endpoint, a JSON array of them, or {"events": [...]})."""
    if not request.user.has_perm("lineage.add_run"):
        raise PermissionDenied("Your role does not allow you to record runs.")
    body = request.data
    if batch:
        events = body.get("events") if isinstance(body, dict) else body
        if not isinstance(events, list):
            raise ParseError("the batch body must be a JSON array of RunEvents")
    else:
        events = [body]
    try:
        results = openlineage.ingest(events, actor=request.user)
    except openlineage.IngestionError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return Response(detail, status=exc.status)
    return Response(results if batch else results[0], status=status.HTTP_201_CREATED)
