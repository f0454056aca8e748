"""`make run`: the development web server and a django-q2 cluster in one terminal."""

import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the site and run a django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        cluster = subprocess.Popen([*manage, "qcluster"])  # noqa: S603
        self.stdout.write(
            f"Kinovi Studio on http://{addrport}/ (Ctrl-C stops the site and the cluster)"
        )
        try:
            subprocess.call([*manage, "runserver", addrport])  # noqa: S603
        except KeyboardInterrupt:
            pass
        finally:
            # Ctrl-C reaches the whole process group; this covers the server exiting on its own.
            if cluster.poll() is None:
                cluster.terminate()
                try:
                    cluster.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    cluster.kill()
