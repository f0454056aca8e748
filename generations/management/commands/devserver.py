"""`make run`: the development web server and a django-q2 cluster in one terminal.

Quiet on purpose: migrations are summed up in one line, the server's own start-up text is
dropped, and once the site answers a banner says where it is and what to do first.
"""

import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# How long to wait for the web server before printing the banner anyway.
READY_TIMEOUT_SECONDS = 20.0


def apply_migrations() -> int:
    """Bring the database up to date without a line per migration; the number applied."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        call_command("migrate", interactive=False, verbosity=0)
    return len(plan)


def wait_until_listening(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def banner(address: str, *, migrated: int, sandbox: bool) -> str:
    site = f"http://{address}/"
    key_step = (
        "API keys → “Use the sandbox”: a free key that makes test-pattern videos"
        if sandbox
        else "API keys → add your Kinovi key (the sandbox is off: KINOVI_SANDBOX=false)"
    )
    database = f"{migrated} migrations applied" if migrated else "already up to date"
    return "\n".join(
        [
            "",
            f"  Kinovi Studio is running at {site}",
            "",
            f"  1. Sign up at {site}signup/",
            f"  2. {key_step}",
            "  3. New video: describe a scene, check the price, Generate",
            "",
            f"  Database: {database}. A django-q2 cluster runs the jobs. Ctrl-C stops both.",
            "",
        ]
    )


class Command(BaseCommand):
    help = "Serve the site and run a django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        host, _, port = addrport.rpartition(":")
        host = host or "127.0.0.1"
        self.stdout.write("Checking the database…")
        migrated = apply_migrations()
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        cluster = subprocess.Popen([*manage, "qcluster"])  # noqa: S603
        # runserver's own banner would bury ours; its errors still reach stderr.
        server = subprocess.Popen(  # noqa: S603
            [*manage, "runserver", addrport], stdout=subprocess.DEVNULL
        )
        try:
            if wait_until_listening(host, int(port), READY_TIMEOUT_SECONDS):
                self.stdout.write(
                    banner(addrport, migrated=migrated, sandbox=settings.KINOVI_SANDBOX)
                )
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            # Ctrl-C reaches the whole process group; this covers either one exiting alone.
            for process in (server, cluster):
                if process.poll() is None:
                    # SIGINT, as Ctrl-C would: runserver's reloader answers SIGTERM with a
                    # traceback at exit.
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        process.kill()
