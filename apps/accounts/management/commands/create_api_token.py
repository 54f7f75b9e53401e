"""Print a new personal API token for a user; the key is the last line of output."""

from django.core.exceptions import ValidationError
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
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="Days until the token stops working (default: until revoked).",
        )

    def handle(self, *args, username: str, name: str, expires_days: int | None, **options):
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        try:
            token, key = api_token_create(  # an operator: no actor
                user=user, name=name, by=None, expires_days=expires_days
            )
        except ValidationError as exc:
            raise CommandError(f"--expires-days: {' '.join(exc.messages)}") from None
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "no expiry"
        )
        self.stderr.write(
            f"Token {token.name!r} for {user.username}, {expiry} (use: Authorization: Token <key>)"
        )
        self.stdout.write(key)
