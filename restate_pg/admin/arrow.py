"""SQL results as an Arrow IPC stream, the only form Restate's CLI (`restate sql`, `restate
invocations list`, `restate kv get`...) reads from `POST /query`.

Optional: it needs pyarrow (`pip install 'restate-pg[arrow]'`); without it, `/query` answers JSON.
"""

from __future__ import annotations

import datetime
import decimal
import typing

import orjson

from restate_pg.store.console import QueryResult

#: The media type of an Arrow IPC stream.
ARROW_STREAM = "application/vnd.apache.arrow.stream"
MISSING = "answering Arrow needs pyarrow: pip install 'restate-pg[arrow]'"


def available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _arrow_value(value: typing.Any) -> typing.Any:
    """A PostgreSQL value as one Arrow infers a column type from: JSON documents become their text,
    numerics a float or an integer, times UTC (Arrow keeps one time zone per column)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def arrow_stream(result: QueryResult) -> bytes:
    """`result` as one record batch in an Arrow IPC stream."""
    import pyarrow as pa

    columns = []
    for index, _ in enumerate(result.columns):
        values = [_arrow_value(row[index]) for row in result.rows]
        try:
            columns.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: show them as text
            columns.append(pa.array([None if v is None else str(v) for v in values], type=pa.string()))
    # names may repeat in SQL; Arrow's schema keeps them all, in order
    table = pa.Table.from_arrays(columns, names=list(result.columns)) if columns else pa.table({})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
