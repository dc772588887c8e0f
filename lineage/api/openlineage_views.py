"""POST /api/v1/lineage and /api/v1/lineage/batch: OpenLineage RunEvents in, as
openlineage-python's HTTP transport sends them (JSON, optionally gzip-compressed, with
`Authorization: Bearer <Stagegate token>`)."""

import json
import zlib

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, PermissionDenied
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from lineage import openlineage

MAX_BODY_BYTES = 20 * 1024 * 1024
_MB = MAX_BODY_BYTES // (1024 * 1024)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"the body is larger than {_MB} MB"
    default_code = "body_too_large"


class OpenLineageParser(BaseParser):
    """JSON, decompressed first when the client sent `Content-Encoding: gzip`; at most
    MAX_BODY_BYTES as sent and once decompressed (413 beyond)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        body = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        if request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            body = gunzip(body, MAX_BODY_BYTES)
        try:
            return json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError is one too
            raise ParseError(f"the body is not JSON: {exc}") from None
        except RecursionError:
            raise ParseError("the body is not JSON: nested too deeply") from None


def gunzip(data: bytes, limit: int) -> bytes:
    """The gzip members of `data`, decompressed, and never more than `limit` bytes of them
    (BodyTooLarge): a few kilobytes can inflate to gigabytes. Zero bytes after a member are
    padding, as gzip.decompress reads them."""
    out = bytearray()
    while True:
        member = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # gzip: header and CRC checked
        try:
            # One byte more than the room left, to tell "at the limit" from "past it".
            out += member.decompress(data, limit + 1 - len(out))
        except zlib.error:
            raise ParseError("the body is not valid gzip") from None
        if len(out) > limit:
            raise BodyTooLarge(f"the body is larger than {_MB} MB once decompressed")
        if not member.eof:
            raise ParseError("the body is not valid gzip")
        data = member.unused_data.lstrip(b"\0")
        if not data:
            return bytes(out)


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
