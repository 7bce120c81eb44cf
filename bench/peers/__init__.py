"""The optional peers of the benchmark: the real Restate and DBOS, beside restate-pg.

Their packages never become dependencies of restate-pg: they live in a cache directory of their
own (see `bench.peers.env`). The `*_app.py` modules here run in that environment, not in the
project's venv, so this package must stay importable without them.
"""
