"""The studio's API against the sandbox it fronts: createTask and recordInfo, side by side.

Usage:  .venv/bin/python bench/api_overhead.py [--runs 3] [--requests 200]

One gunicorn (the Procfile's web process) serves both the studio and the built-in sandbox,
on the bench database `kinovi_bench_api`; no cluster runs, so a createTask through the studio
is what a script waits for (token, rate limit, validation, budget, the queued row and its
event) and the Kinovi call it later causes is the worker's, not the script's. Each run sends,
from one client over one kept-alive connection, alternating so a drift in the machine's load
falls on both: `--requests` createTask straight to the sandbox and as many through the
studio (the seed's body, only the base URL and key changed), then as many recordInfo of
those tasks each way. Reports p50/p99 per run, the medians over the runs and the latency the
studio adds.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadkit  # noqa: E402

BODY = {
    "model": "seedance-20",
    "inputs": {
        "prompt": (
            "A serene mountain landscape at golden hour, cinematic camera slowly panning right"
        ),
        "duration": "5",
        "aspectRatio": "16:9",
    },
}


def world() -> tuple[str, str]:
    """(the sandbox key, a studio token) for a fresh workspace whose default key is that one."""
    from accounts.models import ApiKey, Membership, Role, Workspace
    from accounts.services import create_user
    from api import tokens
    from sandbox.services import create_account

    user = create_user(email=f"bench-{time.time_ns()}@example.com", password="bench pass 1234!")
    workspace = Workspace.objects.create(name="API bench")
    membership = Membership.objects.create(user=user, workspace=workspace, role=Role.MEMBER)
    secret = create_account(label="api bench", credits=10**9, concurrency_limit=10_000)
    key = ApiKey(workspace=workspace, label="Sandbox", is_default=True, created_by=user)
    key.secret = secret
    key.status = ApiKey.Status.VERIFIED
    key.save()
    _, token = tokens.create_token(
        membership=membership, name="bench", scopes=["generate", "read"], expires_at=None
    )
    return secret, token


def timed(session, method: str, url: str, key: str, **kwargs) -> tuple[float, dict]:
    began = time.perf_counter()
    response = session.request(
        method, url, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs
    )
    elapsed = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def one_run(site: str, secret: str, token: str, count: int) -> dict[str, list[float]]:
    import requests

    ways = {"sandbox": (f"{site}/sandbox/api/v1", secret), "studio": (f"{site}/api/v1", token)}
    times: dict[str, list[float]] = {f"{op} {w}": [] for op in ("create", "record") for w in ways}
    tasks: dict[str, list[str]] = {w: [] for w in ways}
    with requests.Session() as session:
        for i in range(count):
            order = list(ways) if i % 2 == 0 else list(reversed(ways))
            for way in order:
                base, key = ways[way]
                ms, data = timed(session, "POST", f"{base}/jobs/createTask", key, json=BODY)
                times[f"create {way}"].append(ms)
                tasks[way].append(data["taskId"])
        for i in range(count):
            order = list(ways) if i % 2 == 0 else list(reversed(ways))
            for way in order:
                base, key = ways[way]
                params = {"taskId": tasks[way][i]}
                ms, _ = timed(session, "GET", f"{base}/jobs/recordInfo", key, params=params)
                times[f"record {way}"].append(ms)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    line = loadkit.bench_setup(database="kinovi_bench_api", fresh=True)
    secret, token = world()
    port = loadkit.free_port()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        env = loadkit.site_env(
            port=port, media_root=Path(tmp), API_RATE_LIMIT_PER_MINUTE=10**6, KINOVI_CALLBACKS="off"
        )
        with loadkit.gunicorn(port=port, env=env, log=Path(tmp) / "web.log"):
            one_run(f"http://127.0.0.1:{port}", secret, token, 10)  # warm-up
            for _ in range(args.runs):
                results.append(one_run(f"http://127.0.0.1:{port}", secret, token, args.requests))
    report(results, args, line)


def report(results, args, line) -> None:
    command = f"bench/api_overhead.py --runs {args.runs} --requests {args.requests}"
    print(
        loadkit.header(
            "The studio's API against the sandbox (bench/api_overhead.py)", command, line
        )
    )
    print("| call | p50 (ms) | p99 (ms) | per run p50 |")
    print("|---|---:|---:|---|")
    medians = {}
    for name in results[0]:
        p50s = [loadkit.percentile(r[name], 0.50) for r in results]
        p99s = [loadkit.percentile(r[name], 0.99) for r in results]
        medians[name] = (loadkit.median(p50s), loadkit.median(p99s))
        runs = ", ".join(f"{v:.1f}" for v in p50s)
        print(f"| {name} | {medians[name][0]:.1f} | {medians[name][1]:.1f} | {runs} |")
    print()
    for op in ("create", "record"):
        studio, sandbox = medians[f"{op} studio"], medians[f"{op} sandbox"]
        print(
            f"- {op}: the studio adds {studio[0] - sandbox[0]:+.1f} ms at p50 and "
            f"{studio[1] - sandbox[1]:+.1f} ms at p99 ({studio[0] / sandbox[0]:.2f}x at p50)."
        )


if __name__ == "__main__":
    main()
