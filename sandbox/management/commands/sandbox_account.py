"""Create a sandbox account and print its key (shown once; only a hash is stored)."""

from django.core.management.base import BaseCommand, CommandError

from sandbox.services import create_account


class Command(BaseCommand):
    help = "Create a Kinovi sandbox account and print its API key."

    def add_arguments(self, parser):
        parser.add_argument("--label", default="Sandbox account")
        parser.add_argument("--credits", type=int, default=100_000)
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, label, credits, concurrency, **options):
        try:
            key = create_account(label=label, credits=credits, concurrency_limit=concurrency)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(key)
