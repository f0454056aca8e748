"""Row locks, always taken in one order (docs/LOCKS.md): workspace, key, generation, ledger.

Every "only one of us at a time" lock is FOR NO KEY UPDATE (`select_for_update(no_key=True)`),
never FOR UPDATE: PostgreSQL's foreign-key checks take FOR KEY SHARE on the referenced row,
which FOR UPDATE blocks and FOR NO KEY UPDATE does not. With FOR UPDATE, inserting a ledger
row or a generation waited at COMMIT on whoever held its workspace or key, late and out of
order, and three such transactions (a submission, a claim, a poll) once waited in a cycle.

Where a transaction will insert rows pointing at a workspace or a key, it takes their FOR KEY
SHARE lock itself, up front, in the documented order, instead of leaving it to the check at
COMMIT.
"""

from django.db import connection

_SHARE_KEY = "SELECT 1 FROM accounts_apikey WHERE id = %s FOR KEY SHARE"
_SHARE_PARENTS = (
    "SELECT w.id FROM generations_generation g"
    " JOIN accounts_workspace w ON w.id = g.workspace_id"
    " JOIN accounts_apikey k ON k.id = g.api_key_id"
    " WHERE g.id = %s FOR KEY SHARE OF w, k"
)


def share_key(api_key_id: int) -> bool:
    """FOR KEY SHARE on the key (what the foreign-key check of a new generation takes at
    COMMIT), taken now: right after the workspace's lock. False if the key is gone."""
    with connection.cursor() as cursor:
        cursor.execute(_SHARE_KEY, [api_key_id])
        return cursor.fetchone() is not None


def share_parents(generation_id: int) -> None:
    """FOR KEY SHARE on the generation's workspace and key (what its new ledger rows' checks
    take at COMMIT), taken before the generation's own lock."""
    with connection.cursor() as cursor:
        cursor.execute(_SHARE_PARENTS, [generation_id])
