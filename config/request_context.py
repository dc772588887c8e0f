"""Who is acting, in which request, and why: carried to history rows and audit events.

The web middleware sets it per request; Celery tasks and management commands set it with
`acting_as(...)` before they act, so a record written anywhere knows its actor.
"""

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """The acting user (or None for the system), a request id, and an optional reason."""

    user: object | None = None
    request_id: str = ""
    reason: str = ""


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "stagegate_request_context", default=None
)


def current() -> RequestContext:
    """The context of the work in progress (an empty one outside any request)."""
    return _current.get() or _EMPTY


@contextmanager
def acting_as(user: object | None, *, request_id: str = "", reason: str = "") -> Iterator[None]:
    """Run a block as `user`, e.g. in a Celery task that received the actor's id."""
    token = _current.set(
        RequestContext(user=user, request_id=request_id or uuid.uuid4().hex, reason=reason)
    )
    try:
        yield
    finally:
        _current.reset(token)


class RequestContextMiddleware:
    """Gives each request an id (echoed in X-Request-ID) and records its user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = uuid.uuid4().hex
        # The user is resolved lazily: DRF token users are only known inside the view,
        # so the context reads request.user at the moment a record is written.
        token = _current.set(RequestContext(user=_LazyUser(request), request_id=request_id))
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = request_id
        return response


class _LazyUser:
    """Resolves the acting user from the request when first needed."""

    def __init__(self, request):
        self._request = request

    def resolve(self):
        user = getattr(self._request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return user


def current_user():
    """The acting user object, or None for anonymous or system work."""
    user = current().user
    if isinstance(user, _LazyUser):
        return user.resolve()
    return user
