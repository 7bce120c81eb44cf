"""PostgreSQL: the only place that knows SQL and psycopg.

The SQL lives in `sql/` (named statements, one file per server function and per view) and is loaded
by `queries.py`; `Store` (`driver.py`) is the facade the other layers call, over one module per
concern; psycopg's errors leave this package translated into `restate_pg.core.errors`.
"""
