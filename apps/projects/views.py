"""Web pages for projects and member management (htmx fragments from the same views)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.config.forms import add_service_error
from apps.core.panels import panels_context
from apps.projects import services
from apps.projects.access import (
    get_invitation_by_key,
    get_invitation_for_user,
    get_invitation_of_project,
    get_member_of_project,
    get_membership_for_user,
)
from apps.projects.capabilities import CAP_LABELS, Cap, Role
from apps.projects.forms import (
    AcceptInvitationForm,
    InvitationForm,
    MemberRoleForm,
    ProjectForm,
)
from apps.projects.selectors import (
    members_of_project,
    memberships_for_user,
    pending_invitations_for_user,
    pending_invitations_of_project,
)


@login_required
@require_http_methods(["GET", "POST"])
def project_list(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(**form.cleaned_data, by=request.user)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. You are its owner.")
            return redirect("projects:detail", slug=project.slug)
    context = {
        "memberships": memberships_for_user(request.user),
        "invitations": pending_invitations_for_user(request.user),
        "form": form,
    }
    return render(request, "projects/list.html", context)


def _members_context(membership, invite_form=None, error: str | None = None) -> dict:
    project = membership.project
    can_manage = membership.can(Cap.MANAGE_MEMBERS)
    return {
        "project": project,
        "membership": membership,
        "can_manage": can_manage,
        "members": members_of_project(project),
        "invitations": pending_invitations_of_project(project) if can_manage else [],
        "invite_form": invite_form or InvitationForm(),
        "roles": Role.choices,
        "error": error,
    }


def _redirect(request, to: str, **kwargs):
    if request.htmx:
        return HttpResponseClientRedirect(reverse(to, kwargs=kwargs))
    return redirect(to, **kwargs)


def _render_members(request, context: dict, status: int = 200):
    template = "projects/detail.html#members" if request.htmx else "projects/detail.html"
    return render(request, template, context, status=status)


@login_required
def project_detail(request, slug: str):
    """The project's page; the parts other apps own (its datasets, a vendor's batches) are
    their panels."""
    membership = get_membership_for_user(request.user, slug=slug)
    if not membership.can(Cap.VIEW):
        # Vendors work from their assigned batches only; they don't see the team.
        context = {"project": membership.project}
        context.update(panels_context("vendor_home", request, context))
        return render(request, "projects/vendor_home.html", context)
    context = _members_context(membership)
    context["capabilities"] = [label for cap, label in CAP_LABELS.items() if membership.can(cap)]
    context["can_edit"] = membership.can(Cap.EDIT_DATA)
    context["can_audit"] = membership.can(Cap.AUDIT)
    context["can_integrate"] = membership.can(Cap.INTEGRATIONS)
    context.update(panels_context("project", request, context))
    return render(request, "projects/detail.html", context)


@login_required
@require_POST
def member_role(request, slug: str, member_id: int):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    member = get_member_of_project(membership.project, member_id)
    form = MemberRoleForm(request.POST)
    error = None
    try:
        if not form.is_valid():
            raise ValidationError({"role": f"Unknown role {request.POST.get('role', '')!r}."})
        services.member_change_role(member=member, role=form.cleaned_data["role"], by=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    else:
        messages.success(request, f"{member.user.username} is now {member.get_role_display()}.")
    if error is None and member.user_id == request.user.id:
        return _redirect(request, "projects:detail", slug=slug)  # what the page may show changed
    return _render_members(
        request,
        _members_context(membership, error=error),
        status=400 if error and request.htmx else 200,
    )


@login_required
@require_POST
def member_remove(request, slug: str, member_id: int):
    membership = get_membership_for_user(request.user, slug=slug)
    if membership.pk != member_id:
        membership = get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    member = get_member_of_project(membership.project, member_id)
    try:
        services.member_remove(member=member, by=request.user)
    except ValidationError as exc:
        return _render_members(
            request,
            _members_context(membership, error=" ".join(exc.messages)),
            status=400 if request.htmx else 200,
        )
    if member.pk == membership.pk:
        messages.success(request, f"You left “{membership.project.name}”.")
        return _redirect(request, "projects:list")
    messages.success(request, f"{member.user.username} removed from the project.")
    if not request.htmx:
        return redirect("projects:detail", slug=slug)
    return _render_members(request, _members_context(membership))


@login_required
@require_POST
def project_delete(request, slug: str):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    if request.POST.get("confirm_slug") != membership.project.slug:
        messages.error(request, "Type the project's slug to confirm deletion.")
        return redirect("projects:detail", slug=slug)
    name = membership.project.name
    services.project_delete(project=membership.project, by=request.user)
    messages.success(request, f"Project “{name}” deleted.")
    return redirect("projects:list")


@login_required
@require_POST
def invitation_create(request, slug: str):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    form = InvitationForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                project=membership.project,
                by=request.user,
                site_url=request.build_absolute_uri("/"),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            if not request.htmx:
                return redirect("projects:detail", slug=slug)
            form, status = None, 200
    context = _members_context(membership, invite_form=form)
    return _render_members(request, context, status=status if request.htmx else 200)


@login_required
@require_POST
def invitation_revoke(request, slug: str, invitation_id: int):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    invitation = get_invitation_of_project(membership.project, invitation_id)
    services.invitation_revoke(invitation=invitation, by=request.user)
    messages.success(request, f"Invitation to {invitation.email} revoked.")
    if not request.htmx:
        return redirect("projects:detail", slug=slug)
    return _render_members(request, _members_context(membership))


@require_http_methods(["GET", "POST"])
def invitation_accept(request, key: str):
    """The link in an invitation e-mail: join as the logged-in user, or make an account."""
    invitation = get_invitation_by_key(request.user, key)
    form = (
        None
        if request.user.is_authenticated
        else AcceptInvitationForm(invitation, request.POST or None)
    )
    error = None
    if request.method == "POST" and (form is None or form.is_valid()):
        if form is None:
            fields = {"user": request.user}
        else:
            fields = {
                "username": form.cleaned_data["username"],
                "password": form.cleaned_data["password1"],
            }
        try:
            membership = services.invitation_accept(invitation=invitation, **fields)
        except ValidationError as exc:
            if form is None:
                error = " ".join(exc.messages)
            else:
                add_service_error(form, exc)
        else:
            if form is not None:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.project.name}.")
            return redirect("projects:detail", slug=invitation.project.slug)
    return render(
        request,
        "projects/invitation_accept.html",
        {"invitation": invitation, "form": form, "error": error},
    )


@login_required
@require_POST
def my_invitation_accept(request, invitation_id: int):
    """Accept, from the projects page, an invitation to the signed-in user's own address."""
    invitation = get_invitation_for_user(request.user, invitation_id)
    try:
        services.invitation_accept(invitation=invitation, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("projects:list")
    messages.success(request, f"Welcome to {invitation.project.name}.")
    return redirect("projects:detail", slug=invitation.project.slug)


@login_required
@require_POST
def my_invitation_decline(request, invitation_id: int):
    invitation = get_invitation_for_user(request.user, invitation_id)
    services.invitation_decline(invitation=invitation, user=request.user)
    messages.success(request, f"You declined the invitation to {invitation.project.name}.")
    return redirect("projects:list")
