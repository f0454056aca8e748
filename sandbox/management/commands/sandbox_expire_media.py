"""Make sandbox output URLs answer 404, as the vendor's do 14 days after a task ends."""

from django.core.management.base import BaseCommand, CommandError

from sandbox.services import expire_media


class Command(BaseCommand):
    help = (
        "Make a sandbox task's video and last-frame URLs answer 404 (the vendor keeps media "
        "14 days), or serve them again with --restore."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--task", metavar="TASK_ID", help="one task, by its taskId")
        which.add_argument(
            "--all", dest="everything", action="store_true", help="every sandbox task"
        )
        parser.add_argument("--restore", action="store_true", help="serve the media again instead")

    def handle(self, *args, task, everything, restore, **options):
        try:
            changed = expire_media(task_id=task, everything=everything, expired=not restore)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        state = "served again" if restore else "now answer 404"
        self.stdout.write(f"{changed} task(s): media URLs {state}.")
