"""API authentication: DRF tokens, sent as `Token <key>` or as `Bearer <key>`.

OpenLineage clients send their API key as `Authorization: Bearer <key>`; accepting the same
Stagegate token under both keywords lets those clients post lineage with no adapter.
"""

from rest_framework.authentication import TokenAuthentication, get_authorization_header


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

    def authenticate_header(self, request):
        return "Token"
