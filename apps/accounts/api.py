"""REST endpoints for the caller's account and personal API tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_tokens_for_user, get_api_token_for_user
from apps.accounts.services import api_token_create, api_token_revoke


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField(source="get_full_name")


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(help_text="Shown once; only a digest is kept.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


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

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request):
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = api_token_create(
            user=request.user, name=body.validated_data["name"], by=request.user
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
