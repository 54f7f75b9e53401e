"""Reads for users and API tokens."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import ApiToken, User


def api_tokens_for_user(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def get_api_token_for_user(user: User, pk: int) -> ApiToken:
    token = api_tokens_for_user(user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    return token
