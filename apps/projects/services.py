"""Writes for projects and memberships. Every rule about who may be a member lives here."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import User
from apps.accounts.services import token_digest
from apps.core import events
from apps.projects.capabilities import Role
from apps.projects.models import Invitation, Membership, Project

INVITATION_DAYS = 7

ROLE_NAMES = ", ".join(Role.values)

NO_SUCH_INVITATION = "This invitation has expired, was revoked or has already been used."


def _valid_role(role: str) -> Role:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}. Choose one of: {ROLE_NAMES}."})
    return Role(role)


@transaction.atomic
def project_create(*, name: str, slug: str = "", description: str = "", by) -> Project:
    """Create a project owned by `by`."""
    name = name.strip()
    slug = (slug.strip() or slugify(name))[:60]
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "A project needs a name."
    try:
        validate_slug(slug)
    except ValidationError:
        errors["slug"] = "Use letters, numbers, hyphens and underscores only."
    if not errors.get("slug") and Project.objects.filter(slug=slug).exists():
        errors["slug"] = f"A project with the slug {slug!r} already exists; choose another."
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name, slug=slug, description=description, created_by=by
            )
    except IntegrityError as exc:  # a concurrent create took the slug
        raise ValidationError(
            {"slug": f"A project with the slug {slug!r} already exists; choose another."}
        ) from exc
    Membership.objects.create(project=project, user=by, role=Role.OWNER, added_by=by)
    events.record(
        events.Event(
            "project.created",
            project=project,
            actor=by,
            audit=events.Audit(target=by.username, detail={"role": Role.OWNER.value}),
        )
    )
    return project


@transaction.atomic
def project_update(
    *, project: Project, name: str | None = None, description: str | None = None
) -> Project:
    fields = []
    if name is not None:
        if not name.strip():
            raise ValidationError({"name": "A project needs a name."})
        project.name = name.strip()
        fields.append("name")
    if description is not None:
        project.description = description
        fields.append("description")
    if fields:
        project.save(update_fields=fields)
    return project


@transaction.atomic
def project_delete(*, project: Project, by) -> None:
    """Delete the project with everything in it. Its audit trail stays, under its name.

    The apps that keep rows of the project delete them first, hearing `project.deleting` in
    this transaction (the datasets app deletes each dataset, recording each deletion)."""
    datasets = project.datasets.count()
    events.record(events.Event("project.deleting", project=project, actor=by))
    events.record(
        events.Event(
            "project.deleted",
            project=project,
            actor=by,
            audit=events.Audit(
                target=project.name,
                detail={
                    "slug": project.slug,
                    "datasets": datasets,
                    "members": project.memberships.count(),
                },
            ),
        )
    )
    project.delete()


@transaction.atomic
def member_add(*, project: Project, user: User, role: str, by) -> Membership:
    """Make `user` a member with a role, without asking them.

    Not reachable from any page or endpoint: people join only by accepting an invitation.
    This serves setup code that already speaks for the person (the demo, the console).
    """
    role = _valid_role(role)
    try:
        with transaction.atomic():
            member = Membership.objects.create(project=project, user=user, role=role, added_by=by)
    except IntegrityError as exc:
        raise ValidationError(
            {"user": f"{user.username} is already a member of this project."}
        ) from exc
    events.record(
        events.Event(
            "member.added",
            project=project,
            actor=by,
            audit=events.Audit(target=user.username, detail={"role": role.value}),
        )
    )
    return member


def _lock_owners(project: Project) -> int:
    """Lock the project's owner rows and count them, so two demotions can't both pass."""
    return len(
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.OWNER)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def member_change_role(*, member: Membership, role: str, by) -> Membership:
    role = _valid_role(role)
    if member.role == Role.OWNER and role != Role.OWNER and _lock_owners(member.project) <= 1:
        raise ValidationError(
            {
                "role": f"{member.user.username} is the last owner; make another member an owner first."
            }
        )
    if member.role != role:
        old = member.role
        member.role = role
        member.save(update_fields=["role"])
        events.record(
            events.Event(
                "member.role_changed",
                project=member.project,
                actor=by,
                audit=events.Audit(
                    target=member.user.username, detail={"from": old, "to": role.value}
                ),
            )
        )
    return member


@transaction.atomic
def member_remove(*, member: Membership, by) -> None:
    """Remove a member; `by` the member themselves is leaving."""
    if member.role == Role.OWNER and _lock_owners(member.project) <= 1:
        raise ValidationError(
            {
                "member": f"{member.user.username} is the last owner and cannot leave; make another member an owner first."
            }
        )
    leaving = by is not None and by.pk == member.user_id
    events.record(
        events.Event(
            "member.left" if leaving else "member.removed",
            project=member.project,
            actor=by,
            audit=events.Audit(target=member.user.username, detail={"role": member.role}),
        )
    )
    member.delete()


def _valid_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"{email!r} is not a valid e-mail address."}) from None
    return email


@transaction.atomic
def invitation_create(*, project: Project, email: str, role: str, by, site_url: str) -> Invitation:
    """Invite an e-mail address to join; a new invitation replaces a pending one.

    Whether the address has an account changes nothing here, in what is returned or in what
    is recorded: the inviter must not learn it, and nobody joins until the invitee accepts.
    `site_url` is the absolute root URL the e-mail's link starts with.
    """
    role = _valid_role(role)
    email = _valid_email(email)
    now = timezone.now()
    replaced = Invitation.objects.filter(
        project=project, email__iexact=email, accepted_at=None, revoked_at=None, declined_at=None
    ).update(revoked_at=now)
    key = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        project=project,
        email=email,
        role=role,
        digest=token_digest(key),
        invited_by=by,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    events.record(
        events.Event(
            "invitation.created",
            project=project,
            actor=by,
            audit=events.Audit(
                target=email,
                detail={"role": role.value, **({"replaced": replaced} if replaced else {})},
            ),
        )
    )
    link = urljoin(site_url, reverse("invitation_accept", kwargs={"key": key}))
    context = {"invitation": invitation, "link": link, "days": INVITATION_DAYS}
    message = render_to_string("projects/invitation_email.txt", context)
    transaction.on_commit(
        lambda: send_mail(
            f"{by.username} invited you to {project.name} on Loupe",
            message,
            settings.DEFAULT_FROM_EMAIL,
            [email],
        )
    )
    return invitation


@transaction.atomic
def invitation_decline(*, invitation: Invitation, user: User) -> None:
    """The invitee says no; the invitation stops working and leaves the owner's list."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending or not invitation.is_for(user):
        raise ValidationError(NO_SUCH_INVITATION)
    invitation.declined_at = timezone.now()
    invitation.save(update_fields=["declined_at"])
    events.record(
        events.Event(
            "invitation.declined",
            project=invitation.project,
            actor=user,
            audit=events.Audit(target=invitation.email, detail={"role": invitation.role}),
        )
    )


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by) -> None:
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        events.record(
            events.Event(
                "invitation.revoked",
                project=invitation.project,
                actor=by,
                audit=events.Audit(target=invitation.email, detail={"role": invitation.role}),
            )
        )


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User | None = None, username: str = "", password: str = ""
) -> Membership:
    """Join the project: as the logged-in `user`, or as a new account made from the invitation.

    A logged-in user must hold the invited address (see `Invitation.is_for`)."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending or (user is not None and not invitation.is_for(user)):
        raise ValidationError(NO_SUCH_INVITATION)
    new_account = user is None
    if user is None:
        username = username.strip()
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(
                {"username": f"The username {username!r} is taken; choose another."}
            )
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise ValidationError(f"{invitation.email} already has an account; log in to accept.")
        candidate = User(username=username, email=invitation.email)
        try:
            candidate.full_clean(exclude=["password"])
            validate_password(password, candidate)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise
            raise ValidationError({"password": exc.messages}) from None
        user = User.objects.create_user(
            username=username, email=invitation.email, password=password
        )
    membership, created = Membership.objects.get_or_create(
        project=invitation.project,
        user=user,
        defaults={"role": invitation.role, "added_by": invitation.invited_by},
    )
    if not created:
        raise ValidationError(f"{user.username} is already a member of {invitation.project.name}.")
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    events.record(
        events.Event(
            "invitation.accepted",
            project=invitation.project,
            actor=user,
            audit=events.Audit(
                target=user.username,
                detail={
                    "role": invitation.role,
                    "email": invitation.email,
                    "invited_by": invitation.invited_by.username if invitation.invited_by else "",
                    "new_account": new_account,
                },
            ),
        )
    )
    return membership
