"""factory_boy factories for the models tests need."""

from functools import cache

import factory
from django.contrib.auth.hashers import make_password

from apps.accounts.models import User
from apps.projects.capabilities import Role
from apps.projects.models import Membership, Project

PASSWORD = "correct horse battery staple"


@cache
def _password_hash() -> str:
    # Hashing once keeps argon2's deliberate slowness out of every factory call.
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.LazyFunction(_password_hash)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER
