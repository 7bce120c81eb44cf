"""restate-sdk's `restate.ext.adk` (Google ADK agents): not built yet in restate-pg.

Importing it raises, rather than leaving `from restate_pg.ext.adk import RestatePlugin` to fail
with a bare ModuleNotFoundError: google-adk installs from PyPI, the integration is what is missing.
"""

raise ImportError(
    "restate_pg.ext.adk (restate-sdk's Google ADK integration) is not provided by restate-pg yet: "
    "use restate_pg.ext.pydantic or restate_pg.ext.openai, or journal the model calls yourself "
    "with ctx.run_typed (see the README, Differences from Restate)"
)
