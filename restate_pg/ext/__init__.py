"""restate-sdk's `restate.ext`: integrations with libraries outside the SDK.

- `restate_pg.ext.tracing`: OpenTelemetry tracers whose spans hang under the invocation's attempt;
- `restate_pg.ext.pydantic`: pydantic-ai agents whose model and tool calls are journaled steps;
- `restate_pg.ext.openai`: the same for openai-agents;
- `restate_pg.ext.adk`, `restate_pg.ext.langchain`: Google ADK and LangChain.

Each needs its library (`pip install 'restate-pg[agents]'` for pydantic-ai and openai-agents,
`opentelemetry-api` for tracing) and says so when it is missing. They are written against the
public SDK surface only (`restate_pg.extensions.current_context`, `ctx.run_typed`), as restate-sdk's.
"""
