"""What the commands print: progress lines and errors prefixed with the program's name, and, from
the operator commands, aligned tables for people and JSON for scripts."""

from __future__ import annotations

import sys
import typing

import orjson

from restate_pg.cli.errors import PROG
from restate_pg.store.console import QueryResult, json_safe


def info(message: str) -> None:
    """A line of progress on stdout: `restate-pg: <message>`."""
    print(f"{PROG}: {message}", flush=True)


def error(message: str) -> None:
    """The one line on stderr a failing command ends with: `restate-pg: error: <message>`."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def print_json(value: typing.Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(json_safe(value), option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def print_result(result: QueryResult, as_json: bool) -> None:
    """Rows as JSON records (`--json`) or as a table."""
    if as_json:
        print_json(result.records())
    else:
        sys.stdout.write(render_table(result))
        sys.stdout.flush()


def _cell(value: typing.Any) -> str:
    value = json_safe(value)
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def render_table(result: QueryResult, *, count: bool = True) -> str:
    """The rows as an aligned text table with a row count, as psql prints them."""
    cells = [[_cell(value) for value in row] for row in result.rows]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(result.columns)]
    lines = [
        " | ".join(name.ljust(width) for name, width in zip(result.columns, widths)).rstrip(),
        "-+-".join("-" * width for width in widths),
    ]
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    if count:
        lines.append(f"({len(result.rows)} row{'' if len(result.rows) == 1 else 's'})")
    return "\n".join(lines) + "\n"
