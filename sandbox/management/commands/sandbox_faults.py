"""Make the sandbox's next N calls fail with 500 or 429 (for demos of error handling)."""

from django.core.management.base import BaseCommand, CommandError

from sandbox.services import clear_faults, inject_faults


class Command(BaseCommand):
    help = "Make the next N sandbox API calls answer 500 or 429, or clear planned faults."

    def add_arguments(self, parser):
        parser.add_argument("--status", type=int, choices=[429, 500], default=500)
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument(
            "--endpoint", choices=["any", "createTask", "recordInfo"], default="any"
        )
        parser.add_argument("--retry-after", type=int, default=None)
        parser.add_argument("--clear", action="store_true", help="cancel every planned fault")

    def handle(self, *args, status, count, endpoint, retry_after, clear, **options):
        if clear:
            self.stdout.write(f"Cleared {clear_faults()} planned fault(s).")
            return
        try:
            inject_faults(status=status, count=count, endpoint=endpoint, retry_after=retry_after)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"The next {count} call(s) to {endpoint} will answer {status}.")
