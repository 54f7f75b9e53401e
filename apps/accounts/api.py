"""REST endpoints for the caller's account and personal API tokens."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_tokens_for_user, get_api_token_for_user
from apps.accounts.services import MAX_TOKEN_DAYS, api_token_create, api_token_revoke


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField(source="get_full_name")


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "expires_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(help_text="Shown once; only a digest is kept.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        required=False,
        allow_null=True,
        help_text="Days until the token stops working; leave out for one that works until revoked.",
    )


class Me(generics.GenericAPIView):
    serializer_class = UserSerializer

    def get(self, request):
        return Response(UserSerializer(request.user).data)


class TokenListCreate(generics.GenericAPIView):
    serializer_class = ApiTokenSerializer

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(api_tokens_for_user(request.user))
        return self.get_paginated_response(ApiTokenSerializer(page, many=True).data)

    @extend_schema(
        request=ApiTokenCreateSerializer,
        responses={
            201: ApiTokenCreatedSerializer,
            403: OpenApiResponse(description="Called with a token instead of a signed-in session."),
        },
    )
    def post(self, request):
        """Create a token. Only from a signed-in session: a token may not mint tokens."""
        if isinstance(request.auth, ApiToken):
            # A token minted by a token would outlive the revocation of its parent.
            raise exceptions.PermissionDenied(
                "API tokens are created from a signed-in session (the API tokens page), "
                "not with another token."
            )
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = api_token_create(
            user=request.user,
            name=body.validated_data["name"],
            by=request.user,
            expires_days=body.validated_data.get("expires_days"),
        )
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetail(generics.GenericAPIView):
    serializer_class = ApiTokenSerializer

    def get(self, request, token_id: int):
        return Response(ApiTokenSerializer(get_api_token_for_user(request.user, token_id)).data)

    def delete(self, request, token_id: int):
        api_token_revoke(token=get_api_token_for_user(request.user, token_id), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
