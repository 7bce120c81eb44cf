"""The alembic environment of restate-pg, shipped as `restate_pg.migrations`.

Run it with `restate-pg migrate`, `restate_pg.store.migrate.upgrade()`, or alembic itself:
`alembic -c <this folder>/alembic.ini -x url=postgresql://... -x schema=restate upgrade head`.
Its version table lives inside the restate-pg schema, apart from any alembic history of the
application that hosts it.
"""
