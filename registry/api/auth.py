"""`POST /api/v1/auth/token`: exchange a username and password for an API token.

Authentication goes through Django's `authenticate()`, so django-axes counts failures here
towards the same lockout as the web login, and inactive users are refused. A token issued is
a login: `user_logged_in` is sent, so the login is logged and the failure count reset, as on
the web.
"""

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.accounts import LOCKED_OUT_MESSAGE


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class ObtainTokenView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if getattr(request._request, "axes_locked_out", False):
            return Response(
                {"detail": LOCKED_OUT_MESSAGE},
                status=status.HTTP_403_FORBIDDEN,
            )
        if user is None:
            return Response(
                {"detail": "Unable to log in with the given username and password."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
