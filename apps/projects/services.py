"""Writes for projects and memberships. Every rule about who may be a member lives here."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.accounts.selectors import user_by_username_or_email
from apps.projects.capabilities import Role
from apps.projects.models import Membership, Project

ROLE_NAMES = ", ".join(Role.values)


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
def project_delete(*, project: Project) -> None:
    project.delete()


@transaction.atomic
def member_add(*, project: Project, user: str, role: str, by) -> Membership:
    """Add the user named by username or e-mail to the project with a role."""
    role = _valid_role(role)
    identifier = (user or "").strip()
    if not identifier:
        raise ValidationError({"user": "Give a username or an e-mail address."})
    if "@" in identifier:
        try:
            validate_email(identifier)
        except ValidationError:
            raise ValidationError(
                {"user": f"{identifier!r} is not a valid e-mail address."}
            ) from None
    person = user_by_username_or_email(identifier)
    if person is None:
        kind = "e-mail address" if "@" in identifier else "username"
        raise ValidationError({"user": f"No user with the {kind} {identifier!r}."})
    if Membership.objects.filter(project=project, user=person).exists():
        raise ValidationError({"user": f"{person.username} is already a member of this project."})
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=person, role=role, added_by=by)
    except IntegrityError as exc:
        raise ValidationError(
            {"user": f"{person.username} is already a member of this project."}
        ) from exc


def _lock_owners(project: Project) -> int:
    """Lock the project's owner rows and count them, so two demotions can't both pass."""
    return len(
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.OWNER)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def member_change_role(*, member: Membership, role: str) -> Membership:
    role = _valid_role(role)
    if member.role == Role.OWNER and role != Role.OWNER and _lock_owners(member.project) <= 1:
        raise ValidationError(
            {
                "role": f"{member.user.username} is the last owner; make another member an owner first."
            }
        )
    if member.role != role:
        member.role = role
        member.save(update_fields=["role"])
    return member


@transaction.atomic
def member_remove(*, member: Membership) -> None:
    if member.role == Role.OWNER and _lock_owners(member.project) <= 1:
        raise ValidationError(
            {
                "member": f"{member.user.username} is the last owner and cannot leave; make another member an owner first."
            }
        )
    member.delete()
