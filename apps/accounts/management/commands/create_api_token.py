"""Print a new personal API token for a user; the key is the last line of output."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for USERNAME and print its key as the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="command line", help="A name to tell the token apart."
        )

    def handle(self, *args, username: str, name: str, **options):
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        token, key = api_token_create(user=user, name=name, by=None)  # an operator: no actor
        self.stderr.write(
            f"Token {token.name!r} for {user.username} (use: Authorization: Token <key>)"
        )
        self.stdout.write(key)
