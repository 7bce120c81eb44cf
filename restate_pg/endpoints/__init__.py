"""SDK endpoints: services written with Restate's SDKs, run as processes of their own and reached
over HTTP. This package discovers what an endpoint serves (`discovery.py`: `GET {uri}/discover`)
and reads its answer, the endpoint manifest (`manifest.py`), into typed values; registering the
result is `services.deployments`' part, storing it the store's.
"""
