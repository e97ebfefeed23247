"""Rows out in the formats every listing command offers: table, json, jsonl, csv.

An export in any format holds exactly the rows the table shows, in the same order.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO
from uuid import UUID

from rich.console import Console
from rich.table import Table
from rich.text import Text


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def plain(value: Any) -> Any:
    """A value as JSON/CSV can hold it: datetimes in ISO 8601, ids as strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return [plain(v) for v in sorted(value, key=str)]
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def emit(
    rows: Iterable[Mapping[str, Any]],
    fmt: OutputFormat,
    columns: Sequence[str],
    *,
    title: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Writes ``rows`` (only ``columns``, in that order) in ``fmt``; returns how many."""
    out = out or sys.stdout
    count = 0
    if fmt is OutputFormat.jsonl:
        for row in rows:
            out.write(json.dumps({c: plain(row.get(c)) for c in columns}, ensure_ascii=False))
            out.write("\n")
            count += 1
    elif fmt is OutputFormat.json:
        items = [{c: plain(row.get(c)) for c in columns} for row in rows]
        json.dump(items, out, ensure_ascii=False, indent=2)
        out.write("\n")
        count = len(items)
    elif fmt is OutputFormat.csv:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
            count += 1
    else:
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            # Text, not markup: "[erased]" and other bracketed values are data, not styles.
            table.add_row(*(Text(cell(row.get(c))) for c in columns))
            count += 1
        Console(file=out, soft_wrap=False, width=None if out is sys.stdout else 200).print(table)
    return count
