"""A trigram index for the gallery's prompt search, on PostgreSQL only.

The gallery filters with `prompt__icontains`, which Django renders on PostgreSQL as
`UPPER("generations_generation"."prompt"::text) LIKE UPPER('%…%')`. A B-tree cannot serve a
leading wildcard, so every search read the whole table (docs/BENCHMARKS.md, gallery pages).
A GIN index with `gin_trgm_ops` on exactly that expression can; an index on plain `prompt`
would not match the query and the planner would never use it.

It stays out of the model state (RunPython instead of Meta.indexes): SQLite, the development
database, has neither pg_trgm nor operator classes, and an index Django knew about would be
created there too. `makemigrations --check` therefore stays clean.

Not atomic, built CONCURRENTLY: a plain CREATE INDEX holds a lock that blocks every INSERT and
UPDATE on the table for the whole build, and on a large table a deploy would stall
submissions, polls and webhook confirmations for that long. CONCURRENTLY takes only a lock that
lets writes go on, at the price of two table scans, and it cannot run inside a transaction.
"""

from django.db import migrations

INDEX = "gen_prompt_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner, or any role with
    # CREATE on the database, may install it; managed PostgreSQL services ship it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [INDEX],
        )
        row = cursor.fetchone()
    if row is not None and not row[0]:
        # A concurrent build that failed (or was interrupted) leaves an invalid index behind,
        # which IF NOT EXISTS would keep forever: drop it and build again.
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON "generations_generation" '
        'USING gin ((UPPER("prompt"::text)) gin_trgm_ops)'
    )
    # The planner keeps statistics on an indexed expression, but only from the next ANALYZE;
    # without them it guesses a fixed selectivity for the LIKE (about ten rows for a word in
    # a fifth of 120 000 prompts) and cannot tell a common word, best served by walking the
    # gallery index newest first, from a rare one, best served by this index. ANALYZE reads
    # a sample and does not block writes.
    schema_editor.execute('ANALYZE "generations_generation"')


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The extension stays: other objects in the database may have come to use it since.
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("generations", "0006_failed_index_with_ids"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
