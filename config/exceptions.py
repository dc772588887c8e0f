"""API errors: Django's model ValidationError becomes a 400 with field messages, and the
database's refusal of a stage write a 409 (registry/stage_guard.py)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from registry import stage_guard


def api_exception_handler(exc, context):
    """Translate errors raised by actions into API responses: a model ValidationError is a
    400 with field messages; a refused governance action answers its own status."""
    from governance.errors import GovernanceError

    if isinstance(exc, GovernanceError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    if isinstance(exc, DatabaseError) and stage_guard.REFUSAL in str(exc):
        # The database refused a stage write that went around the actions (a bug, not bad
        # input): say what the rule is rather than fail with a 500.
        set_rollback()
        return Response(
            {"detail": f"{stage_guard.REFUSAL}; request a transition"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                ("non_field_errors" if field == "__all__" else field): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return exception_handler(exc, context)
