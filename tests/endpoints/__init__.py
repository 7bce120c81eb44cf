"""Real Restate SDK endpoints for restate-pg's service-protocol tests (support code, not tests).

`typescript/` holds the TypeScript SDK's services (@restatedev/restate-sdk, installed with the
example in examples/typescript), `python/` the same services on restate-sdk served by hypercorn;
`processes.py` starts and stops them, `fixtures.py` offers them to tests as pytest fixtures.
"""
