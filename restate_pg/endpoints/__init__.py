"""Services written with Restate's SDKs, in any language, run on restate-pg through Restate's
service protocol: their endpoints' registry entries (`deployment.py`, `services.py`), the
journal of an attempt as protocol messages (`journal.py`, `notifications.py`), and the attempt
that drives an endpoint over HTTP (`attempt.py`, `exchange.py`, `h2c.py`)."""
