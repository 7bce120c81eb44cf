"""Revisions of the restate-pg schema, one file each, numbered 0001, 0002, ... on the `restate_pg` branch.

Each revision runs its own SQL, frozen once released (`../sql/<revision>/`, checksums in
`../sql/MANIFEST`; ../README.md says how to add one). `tests/test_migrations.py` checks that a
migrated database agrees with `restate_pg.store.schema` and the store's SQL files.
"""
