"""Revisions of the restate-pg schema, one file each, numbered 0001, 0002, ... on the `restate_pg` branch.

Revisions are written out by hand rather than computed from `restate_pg.store.schema`, so a change
to the schema needs a new revision here; `tests/test_migrations.py` checks that they agree.
"""
