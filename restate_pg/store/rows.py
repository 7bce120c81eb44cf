"""Rows read by column name: psycopg's `dict_row`, or names given where a statement leaves its
columns unnamed (`SELECT (SELECT status FROM target), count(*) > 0`)."""

from __future__ import annotations

import typing

from psycopg.rows import BaseRowFactory, RowMaker, dict_row

Row = typing.Dict[str, typing.Any]
#: Names for the columns of a statement that leaves them unnamed, in its column order; None when
#: the statement names them itself (`AS ...`).
Columns = typing.Optional[typing.Sequence[str]]


def named_rows(columns: Columns = None) -> BaseRowFactory[Row]:
    """dict rows, keyed by the statement's own column names or by `columns`, whose number is
    checked against the statement's, so that a statement that gains a column fails loudly."""
    if columns is None:
        return dict_row
    names = list(columns)

    def factory(cursor: typing.Any) -> RowMaker[Row]:
        described = cursor.description
        if described is None:  # a statement without rows: nothing to name
            return lambda values: dict(zip(names, values))
        if len(described) != len(names):
            raise RuntimeError(f"expected the columns {names}, the statement returns {[c.name for c in described]}")
        return lambda values: dict(zip(names, values))

    return factory
