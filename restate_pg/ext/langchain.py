"""restate-sdk's `restate.ext.langchain` (LangChain agents): not built yet in restate-pg.

Importing it raises, rather than leaving `from restate_pg.ext.langchain import RestateMiddleware`
to fail with a bare ModuleNotFoundError: langchain installs from PyPI, the integration is what is
missing.
"""

raise ImportError(
    "restate_pg.ext.langchain (restate-sdk's LangChain integration) is not provided by restate-pg yet: "
    "use restate_pg.ext.pydantic or restate_pg.ext.openai, or journal the model calls yourself "
    "with ctx.run_typed (see the README, Differences from Restate)"
)
