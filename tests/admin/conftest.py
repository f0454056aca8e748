"""A ledger with several workspaces, people, keys, models, 4K, failures and refunds, written
directly (not through the lifecycle) so the report can be checked against a hand computation.

March 2026, dollars per credit 0.005 unless said (g7 was priced at 0.004):

    row  gen  kind     credits  workspace  user   key  model     when
    r1   g1   reserve  -200     Acme       alice  K1   standard  Mar 2
    r2   g2   reserve  -560     Acme       bob    K1   fast 4K   Mar 3
    r3   g2   capture   +60     Acme       bob    K1   fast 4K   Mar 3   (used 500 of 560)
    r4   g3   reserve  -544     Acme       bob    K2   std 4K    Mar 5
    r5   g3   refund   +544     Acme       bob    K2   std 4K    Mar 6   (failed, refunded)
    r6   g4   reserve  -600     Zeta       zoe    K3   standard  Mar 10  (failed, NO refund)
    r7   g5   reserve  -112     Zeta       zoe    K3   fast      Mar 12  (unknown, no task id)
    r8   g6   reserve  -200     Zeta       zoe    K3   standard  Mar 20  (stalled)
    r9   g7   reserve  -240     Acme       alice  K2   standard  Mar 31 23:59:59 (0.004 $/credit)
    --- outside the period ---
         g7   capture   -60     Acme       alice  K2             Apr 1 00:00 (used 300 of 240)
         g8   reserve  -200     Acme       alice  K1             Feb 28 23:59:59
         g9   (unknown, created in April, no ledger)
         g10  (rejected in March, no task id, no ledger: nothing to reconcile)
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import ApiKey, Membership, Role, Workspace
from generations.models import CreditEntry, Generation, Status
from generations.reports import Period

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
CANARY_SECRET = "sk-canary-DO-NOT-SHOW-7f3a9c"


def at(month, day, hour=12, minute=0, second=0):
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Ledger:
    acme: Workspace
    zeta: Workspace
    alice: object
    bob: object
    zoe: object
    k1: ApiKey
    k2: ApiKey
    k3: ApiKey
    g: dict
    r: dict


def make_key(workspace, label, secret, **extra):
    key = ApiKey(workspace=workspace, label=label, status=ApiKey.Status.VERIFIED, **extra)
    key.secret = secret
    key.save()
    return key


def build_ledger(cast, team, make_user, *, suffix="") -> Ledger:
    alice, bob = cast["alice"], cast["bob"]
    zoe = make_user(f"zoe{suffix}@example.com")
    zeta = Workspace.objects.create(name=f"Zeta Studio{suffix}")
    Membership.objects.create(user=zoe, workspace=zeta, role=Role.OWNER)
    k1 = make_key(team, f"Main{suffix}", CANARY_SECRET, is_default=not suffix, concurrency_limit=3)
    k2 = make_key(team, f"Second{suffix}", "sk-second-key-0002")
    k3 = make_key(zeta, f"Zeta key{suffix}", "sk-zeta-key-0003", is_default=True)

    def gen(name, workspace, user, key, model, duration, upscale, status, estimate, **extra):
        extra.setdefault("task_id", f"task_{name}{suffix}")
        return Generation.objects.create(
            workspace=workspace,
            creator=user,
            api_key=key,
            model=model,
            prompt=f"A prompt for {name}",
            duration=duration,
            upscale_4k=upscale,
            status=status,
            estimated_credits=estimate,
            **extra,
        )

    std, fast = "seedance-20", "seedance2-fast"
    g = {
        "g1": gen(
            "g1",
            team,
            alice,
            k1,
            std,
            5,
            False,
            Status.SUCCESS,
            200,
            credits_used=200,
            created_at=at(3, 2),
        ),
        "g2": gen(
            "g2",
            team,
            bob,
            k1,
            fast,
            10,
            True,
            Status.SUCCESS,
            560,
            credits_used=500,
            created_at=at(3, 3),
        ),
        "g3": gen("g3", team, bob, k2, std, 8, True, Status.FAIL, 544, created_at=at(3, 5)),
        "g4": gen("g4", zeta, zoe, k3, std, 15, False, Status.FAIL, 600, created_at=at(3, 10)),
        "g5": gen(
            "g5",
            zeta,
            zoe,
            k3,
            fast,
            4,
            False,
            Status.UNKNOWN,
            112,
            task_id=None,
            created_at=at(3, 12),
        ),
        "g6": gen("g6", zeta, zoe, k3, std, 5, False, Status.STALLED, 200, created_at=at(3, 20)),
        "g7": gen(
            "g7",
            team,
            alice,
            k2,
            std,
            6,
            False,
            Status.SUCCESS,
            240,
            credits_used=300,
            dollars_per_credit=Decimal("0.004"),
            created_at=at(3, 31, 23, 59, 58),
        ),
        "g8": gen(
            "g8",
            team,
            alice,
            k1,
            std,
            5,
            False,
            Status.SUCCESS,
            200,
            credits_used=200,
            created_at=at(2, 28, 23, 59, 58),
        ),
        "g9": gen(
            "g9",
            team,
            alice,
            k1,
            std,
            5,
            False,
            Status.UNKNOWN,
            200,
            task_id=None,
            created_at=at(4, 2),
        ),
        "g10": gen(
            "g10",
            team,
            bob,
            k1,
            std,
            5,
            False,
            Status.REJECTED,
            200,
            task_id=None,
            created_at=at(3, 15),
        ),
    }

    def entry(generation, kind, credits, when, dpc=Decimal("0.005")):
        return CreditEntry.objects.create(
            generation=generation,
            workspace=generation.workspace,
            user=generation.creator,
            api_key=generation.api_key,
            model=generation.model,
            kind=kind,
            credits=credits,
            dollars_per_credit=dpc,
            created_at=when,
        )

    reserve, capture, refund = "reserve", "capture", "refund"
    r = {
        "r1": entry(g["g1"], reserve, -200, at(3, 2)),
        "r2": entry(g["g2"], reserve, -560, at(3, 3)),
        "r3": entry(g["g2"], capture, 60, at(3, 3, 13)),
        "r4": entry(g["g3"], reserve, -544, at(3, 5)),
        "r5": entry(g["g3"], refund, 544, at(3, 6)),
        "r6": entry(g["g4"], reserve, -600, at(3, 10)),
        "r7": entry(g["g5"], reserve, -112, at(3, 12)),
        "r8": entry(g["g6"], reserve, -200, at(3, 20)),
        "r9": entry(g["g7"], reserve, -240, at(3, 31, 23, 59, 59), Decimal("0.004")),
        "g7_capture": entry(g["g7"], capture, -60, at(4, 1, 0, 0, 0), Decimal("0.004")),
        "g8_reserve": entry(g["g8"], reserve, -200, at(2, 28, 23, 59, 59)),
    }
    return Ledger(team, zeta, alice, bob, zoe, k1, k2, k3, g, r)


@pytest.fixture
def ledger(cast, team, make_user) -> Ledger:
    return build_ledger(cast, team, make_user)


@pytest.fixture
def superuser(make_user):
    user = make_user("root@example.com")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def staff(make_user):
    """Staff with no model permissions at all."""
    user = make_user("staff@example.com")
    user.is_staff = True
    user.save()
    return user


def grant(user, *codenames):
    from django.contrib.auth.models import Permission

    for codename in codenames:
        app_label, name = codename.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=name)
        )
    # Permissions are cached on the instance.
    for attr in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attr, None)
    return user
