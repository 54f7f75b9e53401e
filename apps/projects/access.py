"""The one access layer: fetch a project (or its members) and authorise in one call.

A project the user is not a member of is a 404, exactly like a missing one. A member whose
role cannot even see the thing asked for (a vendor asking for the member list) also gets 404;
a member who may see it but not do what is asked gets 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.accounts.services import token_digest
from apps.projects.capabilities import Cap
from apps.projects.models import Invitation, Membership, Project
from apps.projects.selectors import pending_invitations, pending_invitations_for_user
from apps.projects.services import NO_SUCH_INVITATION


def get_membership_for_user(
    user, *, pk: int | None = None, slug: str | None = None, need: Cap | None = None
) -> Membership:
    """The user's membership of the project named by pk or slug, checked for `need`."""
    if not user.is_authenticated:
        raise Http404("No such project.")
    lookup = {"project_id": pk} if pk is not None else {"project__slug": slug}
    membership = (
        Membership.objects.select_related("project", "user").filter(user=user, **lookup).first()
    )
    if membership is None:
        raise Http404("No such project.")
    if need is not None and not membership.can(need):
        if membership.can(Cap.VIEW):
            raise PermissionDenied("Your role in this project does not allow this.")
        raise Http404("No such project.")
    return membership


def get_project_for_user(
    user, *, pk: int | None = None, slug: str | None = None, need: Cap | None = None
) -> Project:
    return get_membership_for_user(user, pk=pk, slug=slug, need=need).project


def get_member_of_project(project: Project, member_id: int) -> Membership:
    member = Membership.objects.select_related("user").filter(project=project, pk=member_id).first()
    if member is None:
        raise Http404("No such member.")
    return member


def get_invitation_of_project(project: Project, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.filter(project=project, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def get_invitation_by_key(user, key: str) -> Invitation:
    """The pending invitation whose link carries `key`, if `user` may take it up.

    Anyone may open the link to make an account for the invited address; a signed-in user
    only with that address. Any other case answers exactly as an unknown key does, so holding
    a forwarded link tells nothing and joins nothing.
    """
    invitation = (
        pending_invitations()
        .select_related("project", "invited_by")
        .filter(digest=token_digest(key))
        .first()
    )
    if invitation is None or (user.is_authenticated and not invitation.is_for(user)):
        raise Http404(NO_SUCH_INVITATION)
    return invitation


def get_invitation_for_user(user, pk: int) -> Invitation:
    """A pending invitation addressed to the signed-in user's e-mail; anything else is a 404."""
    invitation = pending_invitations_for_user(user).filter(pk=pk).first()
    if invitation is None:
        raise Http404(NO_SUCH_INVITATION)
    return invitation
