"""Account pages: personal API tokens (login and passwords use Django's own views)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.forms import ApiTokenForm
from apps.accounts.selectors import api_tokens_for_user, get_api_token_for_user
from apps.accounts.services import api_token_create, api_token_revoke
from apps.config.forms import add_service_error
from apps.core.panels import panels_context


def _tokens_page(request, *, form=None, new_key: str | None = None, status: int = 200):
    template = "accounts/tokens.html#tokens" if request.htmx else "accounts/tokens.html"
    context = {
        "tokens": api_tokens_for_user(request.user),
        "form": form or ApiTokenForm(),
        "new_key": new_key,
    }
    context.update(panels_context("tokens", request, context))
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    if request.method == "GET":
        return _tokens_page(request)
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form=form, status=400 if request.htmx else 200)
    try:
        _token, key = api_token_create(user=request.user, by=request.user, **form.cleaned_data)
    except ValidationError as exc:
        add_service_error(form, exc)
        return _tokens_page(request, form=form, status=400 if request.htmx else 200)
    return _tokens_page(request, new_key=key)


@login_required
@require_POST
def token_revoke(request, token_id: int):
    api_token_revoke(token=get_api_token_for_user(request.user, token_id), by=request.user)
    return _tokens_page(request)
