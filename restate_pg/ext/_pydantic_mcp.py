"""MCP toolsets of a `RestateAgent` (`restate_pg.ext.pydantic`): listing the server's tools and
calling one are journaled steps. Apart because pydantic-ai's MCP support is an extra of its own."""

from __future__ import annotations

import dataclasses
import typing

from pydantic_ai import ToolDefinition
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.toolsets.wrapper import WrapperToolset

from restate_pg.api.errors import SdkInternalBaseException
from restate_pg.api.retry import RunOptions
from restate_pg.ext._pydantic_serde import PydanticTypeAdapter, handler_context as _handler_context

Any = typing.Any


@dataclasses.dataclass
class _ToolDefinitions:
    """The server's tools as journaled: their definitions (a tool's validator is rebuilt from them)."""

    output: typing.Dict[str, ToolDefinition]


@dataclasses.dataclass
class _ToolResult:
    output: Any


class RestateMCPToolset(WrapperToolset[Any]):
    def __init__(self, wrapped: MCPToolset[Any], run_options: RunOptions[Any]) -> None:
        super().__init__(wrapped)
        self._mcp = wrapped
        self.get_tools_options = dataclasses.replace(run_options, serde=PydanticTypeAdapter(_ToolDefinitions))
        self.run_tools_options = dataclasses.replace(run_options, serde=PydanticTypeAdapter(_ToolResult))

    def visit_and_replace(self, visitor: typing.Callable[[Any], Any]) -> Any:
        return visitor(self)

    async def get_tools(self, ctx: Any) -> typing.Dict[str, Any]:
        async def listing() -> _ToolDefinitions:
            tools = await self._mcp.get_tools(ctx)
            return _ToolDefinitions({name: tool.tool_def for name, tool in tools.items()})

        restate_ctx = _handler_context("A toolset")
        try:
            listed = await restate_ctx.run_typed("get mcp tools", listing, self.get_tools_options)
        except SdkInternalBaseException as exc:
            raise Exception("Internal error during get_tools call") from exc
        return {name: self.tool_for_tool_def(definition) for name, definition in listed.output.items()}

    def tool_for_tool_def(self, tool_def: ToolDefinition) -> Any:
        return self._mcp.tool_for_tool_def(tool_def)

    async def call_tool(self, name: str, tool_args: typing.Dict[str, Any], ctx: Any, tool: Any) -> Any:
        async def call() -> _ToolResult:
            return _ToolResult(await self._mcp.call_tool(name, tool_args, ctx, tool))

        restate_ctx = _handler_context("A toolset")
        try:
            result = await restate_ctx.run_typed(f"Calling mcp tool {name}", call, self.run_tools_options)
        except SdkInternalBaseException as exc:
            raise Exception("Internal error during tool call") from exc
        return result.output
