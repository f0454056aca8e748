"""A chaos soak: members submit (service and page), two clusters run, webhooks come twice, late
and early, the sandbox answers 429s and 500s, a worker is killed with SIGKILL; then the
studio's promises are checked.

Usage:  .venv/bin/python bench/soak.py [--seconds 600] [--kills]

It runs tests/soak/test_soak.py (the suite runs the same soak for SOAK_SECONDS, 20 s by
default) for the time asked, and prints the report the test writes. With --kills, a worker of
one cluster is killed with SIGKILL halfway through, and the soak waits for the sweepers to
catch up with what it was doing (minutes: a submission's claim turns `unknown` only after
ticker.submitting_timeout(), a poll's claim lease is 120 s). The machine's PostgreSQL and
Redis are shared with other runs, so the soak restarts neither (tests/faults/
test_database_restart.py restarts a private PostgreSQL).
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Report:
    seconds: float = 0.0
    submitted: int = 0
    pages: Counter = field(default_factory=Counter)  # HTTP status of each page answer
    webhooks: Counter = field(default_factory=Counter)  # kind → deliveries posted by the soak
    webhook_statuses: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)  # kind → injected
    kills: int = 0
    drained_in: float | None = None
    outcomes: Counter = field(default_factory=Counter)  # final status → generations
    invariants: dict = field(default_factory=dict)  # name → "holds" or what broke it

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 1),
            "submitted": self.submitted,
            "generations_per_minute": round(self.submitted * 60 / self.seconds, 1)
            if self.seconds
            else 0,
            "webhooks_per_second": round(sum(self.webhooks.values()) / self.seconds, 2)
            if self.seconds
            else 0,
            "pages": dict(self.pages),
            "webhooks": dict(self.webhooks),
            "webhook_statuses": dict(self.webhook_statuses),
            "faults": dict(self.faults),
            "worker_kills": self.kills,
            "drained_in": None if self.drained_in is None else round(self.drained_in, 1),
            "outcomes": dict(self.outcomes),
            "invariants": self.invariants,
        }


def worker_pids(cluster_pid: int) -> list[int]:
    """The processes of a qcluster's process group but the cluster itself (its sentinel,
    workers, monitor, pusher): the soak kills only processes it started."""
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "-g", str(cluster_pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = [line.split(None, 1) for line in out.splitlines() if line.strip()]
    others = [(int(pid), args) for pid, *rest in rows for args in [rest[0] if rest else ""]]
    others = [(pid, args) for pid, args in others if pid != cluster_pid]
    # django-q2 names its processes when setproctitle is there: then only workers are chosen.
    workers = [pid for pid, args in others if "worker" in args.lower()]
    return workers or [pid for pid, _ in others]


def kill_a_worker(cluster_pid: int, rng: random.Random) -> int | None:
    pids = worker_pids(cluster_pid)
    if not pids:
        return None
    victim = rng.choice(pids)
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return victim


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--kills", action="store_true", help="SIGKILL a worker halfway")
    parser.add_argument("--report", default=str(ROOT / "soak-report.json"))
    args = parser.parse_args()
    env = dict(
        os.environ,
        SOAK_SECONDS=str(args.seconds),
        SOAK_REPORT=args.report,
        SOAK_KILLS="1" if args.kills else "",
    )
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kinovi_soak")
    command = [PYTHON, "-m", "pytest", "tests/soak", "-n", "0", "-q", "-p", "no:cacheprovider"]
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    print(f"soak finished in {time.monotonic() - started:.0f} s, pytest exit {code}")
    if Path(args.report).exists():
        print(json.dumps(json.loads(Path(args.report).read_text()), indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
