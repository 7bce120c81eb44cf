"""SDK endpoints: services written with Restate's SDKs, in any language, run as processes of
their own and reached over HTTP through Restate's service protocol. This package discovers what an
endpoint serves (`discovery.py`: `GET {uri}/discover`) and reads its manifest (`manifest.py`);
turns a registered deployment into what the ingress and the worker use (`deployment.py`,
`services.py`, `targets.py`); and drives an attempt on an endpoint: the journal as protocol
messages (`journal.py`, `notifications.py`, `suspension.py`) and the HTTP exchange
(`attempt.py`, `exchange.py`, on the HTTP/2 cleartext client of `h2c.py` and `h2frames.py`).
Registering is `services.deployments`' part, storing it the store's.
"""
