"""API authentication: DRF tokens, sent as `Token <key>` or as `Bearer <key>`.

OpenLineage clients send their API key as `Authorization: Bearer <key>`; accepting the same
Stagegate token under both keywords lets those clients post lineage with no adapter.
"""

import functools

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from registry.prepared import PreparedQuery


class BearerOrTokenAuthentication(TokenAuthentication):
    """TokenAuthentication that also accepts the `Bearer` keyword."""

    keywords = ("Token", "Bearer")

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth:
            return None
        for keyword in self.keywords:
            if auth[0].lower() == keyword.lower().encode():
                self.keyword = keyword
                return super().authenticate(request)
        return None

    def authenticate_credentials(self, key):
        """DRF's check (the token, then its user active), with the lookup compiled once: it
        runs on every API request."""
        token = _token_lookup().first(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)

    def authenticate_header(self, request):
        return "Token"


@functools.cache
def _token_lookup() -> PreparedQuery:
    from rest_framework.authtoken.models import Token

    return PreparedQuery(
        lambda key: Token.objects.select_related("user").filter(key=key), Token, strings=("key",)
    )
