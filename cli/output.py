"""Rows out in the formats every listing command offers: table, json, jsonl, csv.

The table is for a person at a terminal: each listing shows the columns its reader needs
(``Listing.default``; ``--columns`` or ``--wide`` for more), times in the school's time
zone to the minute, text wrapped between words, nested data as indented lines, and one
clear line when nothing matches. When the chosen columns cannot fit the terminal without
breaking words, each row is printed as a block of ``field: value`` lines instead.

The exports (``json``, ``jsonl``, ``csv``) keep every field of the listing, in full,
whatever columns the table shows: the same rows, in the same order.

Data is never trusted with the terminal or a spreadsheet: control characters (ESC, CR,
bidirectional overrides ...) are shown escaped in the table, and a CSV cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) is
prefixed with ``'``, as the OWASP guidance on CSV injection says.
"""

from __future__ import annotations

import csv
import json
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import chain
from typing import Annotated, Any, TextIO
from uuid import UUID

import typer

from sferum_audit.cli.times import local, zone_name


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MIN_CELL = 6  # a column narrower than this reads as a stack of letters: use blocks instead
LONGEST_WORD = 24  # words longer than this (ids, URLs) may be folded


ColumnsOption = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Table columns to show, comma-separated (see --wide for every field).",
        show_default=False,
    ),
]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Show every field in the table (exports always do).")
]


@dataclass(frozen=True)
class Listing:
    """What one listing command prints: its title, every field (exports), the columns
    its reader needs by default (table, in reading order), which of those give way first
    on a narrow terminal, short headers, and the line shown when nothing matches."""

    title: str
    columns: tuple[str, ...]
    default: tuple[str, ...]
    drop: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    empty: str = "nothing matches"

    def __post_init__(self) -> None:
        assert set(self.default) <= set(self.columns), (self.title, self.default)
        assert set(self.drop) <= set(self.default), (self.title, self.drop)

    def table_columns(self, wanted: str | None = None, wide: bool = False) -> tuple[str, ...]:
        """The table's columns: ``--columns a,b`` (checked), every field (``--wide``), or
        the default set."""
        if wanted:
            names = tuple(name.strip() for name in wanted.split(",") if name.strip())
            unknown = [name for name in names if name not in self.columns]
            if unknown or not names:
                raise typer.BadParameter(
                    f"unknown column {', '.join(map(repr, unknown)) or repr(wanted)}; "
                    f"valid: {', '.join(self.columns)}",
                    param_hint="--columns",
                )
            return names
        return self.columns if wide else self.default

    def emit(
        self,
        rows: Iterable[Mapping[str, Any]],
        fmt: OutputFormat,
        *,
        columns: str | None = None,
        wide: bool = False,
        title: str | None = None,
        empty: str | None = None,
        out: TextIO | None = None,
        blocks: bool = False,
    ) -> int:
        """``emit`` with this listing's fields, the chosen table columns and headers
        (``blocks``: each row as ``field: value`` lines, for long text)."""
        chosen = self.table_columns(columns, wide)
        return emit(
            rows,
            fmt,
            self.columns,
            title=title or self.title,
            out=out,
            table_columns=chosen,
            empty=empty or self.empty,
            labels=self.labels,
            droppable=() if (columns or wide) else self.drop,
            blocks=blocks,
        )


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
    """A value as one CSV cell: nested data as JSON text."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def csv_cell(value: Any) -> str:
    """``cell``, with text that a spreadsheet would evaluate made inert (a leading ``'``)."""
    text = cell(value)
    if isinstance(plain(value), str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


# -- text for a terminal ------------------------------------------------------------------------


def _escape_char(char: str) -> str:
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """``text`` with every control and format character (ESC, CR, U+202E ...) escaped, so
    data cannot move the cursor, colour the screen, hide text or forge a line."""
    if text.isprintable():
        return text
    return "".join(
        _escape_char(c) if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text
    )


def is_time_field(name: str) -> bool:
    return name == "at" or name.endswith("_at")


def scalar_text(name: str, value: Any) -> str:
    """One value as the table shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_time_field(name) and isinstance(value, str | datetime):
        return local(value)
    if isinstance(value, float):
        return f"{value:g}"
    return safe(str(plain(value)))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple | set | frozenset)


def nested_lines(value: Any, indent: int = 0) -> list[str]:
    """Maps and lists as indented ``key: value`` lines; a list of maps as ``- `` items."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = safe(str(key))
            if _is_scalar(item):
                lines.append(f"{pad}{name}: {scalar_text(str(key), item)}")
            elif not item:
                lines.append(f"{pad}{name}: none")
            elif all(_is_scalar(v) for v in item):
                lines.append(f"{pad}{name}: {', '.join(scalar_text(str(key), v) for v in item)}")
            else:
                lines.append(f"{pad}{name}:")
                lines.extend(nested_lines(item, indent + 1))
        return lines
    for item in value:
        if isinstance(item, Mapping):
            parts = [
                f"{safe(str(k))}: {scalar_text(str(k), v)}"
                if _is_scalar(v)
                else f"{safe(str(k))}: {safe(json.dumps(plain(v), ensure_ascii=False))}"
                for k, v in item.items()
                if v is not None
            ]
            lines.append(f"{pad}- {'; '.join(parts)}")
        else:
            lines.append(f"{pad}- {scalar_text('', item)}")
    return lines


def shown(name: str, value: Any) -> str:
    """A field's value as one table cell (possibly several lines)."""
    if not isinstance(value, datetime):
        value = plain(value)
    if _is_scalar(value):
        return scalar_text(name, value)
    if not value:
        return ""
    if isinstance(value, list) and all(_is_scalar(v) for v in value):
        return ", ".join(scalar_text(name, v) for v in value)
    return "\n".join(nested_lines(value))


def longest_word(text: str) -> int:
    """The longest run without a space."""
    return max((len(word) for word in text.split()), default=0)


def longest_line(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


# -- writing --------------------------------------------------------------------------------------


def export_columns(columns: Sequence[str], first: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The listing's fields, then any further field its rows carry (a view that gained a
    column exports it before the listing's declaration catches up)."""
    extra = [k for k in (first or {}) if k not in columns and not k.endswith("_uuid")]
    return (*columns, *extra)


def emit(
    rows: Iterable[Mapping[str, Any]],
    fmt: OutputFormat,
    columns: Sequence[str],
    *,
    title: str | None = None,
    out: TextIO | None = None,
    table_columns: Sequence[str] | None = None,
    empty: str | None = None,
    labels: Mapping[str, str] | None = None,
    droppable: Sequence[str] = (),
    blocks: bool = False,
) -> int:
    """Writes ``rows`` in ``fmt``: exports hold every field of ``columns`` (and any the
    rows add), the table ``table_columns`` (default: ``columns``) under ``labels``,
    leaving out ``droppable`` ones, first to last, while they do not fit; returns how
    many rows."""
    out = out or sys.stdout
    iterator = iter(rows)
    first = next(iterator, None)
    if fmt is not OutputFormat.table:
        every = export_columns(columns, first)
        items = iterator if first is None else chain([first], iterator)
        return _export(items, fmt, every, out)
    materialised = [] if first is None else [first, *iterator]
    if not materialised:
        out.write(f"{title or 'Listing'}: {empty or 'nothing matches'}.\n")
        return 0
    layout = TableLayout(tuple(table_columns or columns), labels or {}, tuple(droppable))
    layout.print(materialised, title, out, blocks=blocks)
    return len(materialised)


def _export(
    rows: Iterator[Mapping[str, Any]], fmt: OutputFormat, columns: Sequence[str], out: TextIO
) -> int:
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
    else:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
            count += 1
    return count


def console_width(out: TextIO) -> int:
    """The terminal's width (``COLUMNS`` when not a terminal; 80 without it)."""
    from rich.console import Console

    return Console(file=out, width=None if out is sys.stdout else 200).width


@dataclass(frozen=True)
class TableLayout:
    """Fits the chosen columns to the terminal and wraps every cell itself.

    Each column gets at least its longest word (a time stays whole; a word longer than
    ``LONGEST_WORD`` may be folded). Droppable columns give way, first to last, while the
    words do not fit; then words may break after their hyphens (``content-`` /
    ``removed``); only if even that does not fit, each row is printed as a block. Spare
    width goes to the columns whose text is longest, and cells are wrapped here between
    words, so the table never breaks a word in the middle."""

    columns: tuple[str, ...]
    labels: Mapping[str, str]
    droppable: tuple[str, ...]

    def header(self, name: str) -> str:
        return self.labels.get(name, name)

    def min_width(self, name: str, cells: list[str], *, hyphens: bool) -> int:
        measure: Callable[[str], int] = longest_word
        if is_time_field(name):
            measure = longest_line
        elif hyphens and not name.endswith("_id"):  # an id broken in two reads as two ids
            measure = longest_piece
        widest = max(longest_word(self.header(name)), *(measure(c) for c in cells))
        return min(LONGEST_WORD, max(widest, 1))

    def print(
        self, rows: list[Mapping[str, Any]], title: str | None, out: TextIO, *, blocks: bool
    ) -> None:
        width = console_width(out)
        columns = list(self.columns)
        cells = {c: [shown(c, row.get(c)) for row in rows] for c in columns}

        def needed(names: list[str], hyphens: bool) -> int:
            words = sum(self.min_width(c, cells[c], hyphens=hyphens) for c in names)
            return words + GAP * (len(names) - 1)

        left_out: list[str] = []
        for name in self.droppable:
            if needed(columns, False) <= width:
                break
            if name in columns and len(columns) > 1:
                columns.remove(name)
                left_out.append(name)
        hyphens = needed(columns, False) > width
        footer = f"{len(rows)} rows"
        if any(is_time_field(c) for c in columns):
            footer += f"; times in {zone_name()}"
        if left_out:
            footer += f"; not shown here: {', '.join(left_out)} (--wide, --columns)"
        if blocks or (needed(columns, True) > width and len(columns) > 1):
            _blocks([[cells[c][i] for c in columns] for i in range(len(rows))], columns, title,
                    width, out)  # fmt: skip
        else:
            minimum = {c: self.min_width(c, cells[c], hyphens=hyphens) for c in columns}
            widths = share_width(columns, minimum, cells, width - GAP * (len(columns) - 1))
            self._table(columns, cells, widths, len(rows), title, out)
        out.write("\n".join(textwrap.wrap(footer, width=max(width, 40))) + "\n")

    def _table(
        self,
        columns: list[str],
        cells: dict[str, list[str]],
        widths: dict[str, int],
        count: int,
        title: str | None,
        out: TextIO,
    ) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(file=out, soft_wrap=False, width=console_width(out))
        wrapped = {c: [wrap_cell(text, widths[c], c) for text in cells[c]] for c in columns}
        multiline = any("\n" in text for c in columns for text in wrapped[c])
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
            show_lines=multiline,
        )
        for name in columns:
            header = "\n".join(wrap_cell(self.header(name), widths[name], name).split("\n"))
            table.add_column(header, width=widths[name], no_wrap=True, overflow="fold")
        for i in range(count):
            # Text, not markup: "[erased]" and other bracketed values are data, not styles.
            table.add_row(*(Text(wrapped[name][i]) for name in columns))
        console.print(table)


def longest_piece(text: str) -> int:
    """The longest run without a space, where a word may also break after a hyphen."""
    return max(
        (len(part) + (i < word.count("-")) for word in text.split()
         for i, part in enumerate(word.split("-"))),
        default=0,
    )  # fmt: skip


def share_width(
    columns: list[str], minimum: dict[str, int], cells: dict[str, list[str]], total: int
) -> dict[str, int]:
    """Column widths from their minimums: the spare width first makes whole the columns
    that need least to show every line unbroken (ids, codes), and what is left goes to
    the longest text (a reason, a description), which wraps between words."""
    widths = dict(minimum)
    natural = {c: max(minimum[c], longest_line_of(cells[c])) for c in columns}
    spare = total - sum(widths.values())
    for name in sorted(columns, key=lambda c: natural[c] - widths[c]):
        deficit = natural[name] - widths[name]
        if 0 < deficit <= spare:
            widths[name] += deficit
            spare -= deficit
    wanting = [c for c in columns if widths[c] < natural[c]]
    if spare > 0 and wanting:
        widest = max(wanting, key=lambda c: natural[c] - widths[c])
        widths[widest] += min(spare, natural[widest] - widths[widest])
    return widths


def longest_line_of(texts: list[str]) -> int:
    return max((longest_line(t) for t in texts), default=0)


def wrap_cell(text: str, width: int, name: str) -> str:
    """``text`` wrapped to ``width`` between words (after a hyphen only if a word does not
    fit; a time never), keeping the indentation of nested lines."""
    if not text:
        return text
    lines: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width or is_time_field(name):
            lines.append(line)
            continue
        body = line.lstrip(" ")
        depth = " " * (len(line) - len(body))
        hanging = depth + ("  " if body.startswith("- ") else "")
        lines.extend(
            textwrap.wrap(
                body,
                width=width,
                initial_indent=depth,
                subsequent_indent=hanging if len(hanging) < width // 2 else "",
                break_on_hyphens=True,
                break_long_words=True,
            )
            or [line]
        )
    return "\n".join(lines)


GAP = 2  # characters between two columns of the table


def _blocks(
    rows: list[list[str]], columns: Sequence[str], title: str | None, width: int, out: TextIO
) -> None:
    """Each row as ``field: value`` lines, wrapped between words with hanging indents."""
    if title:
        out.write(f"{title}\n")
    label = max(len(c) for c in columns) + 2
    for row_cells in rows:
        out.write("─" * min(width, 40) + "\n")
        for name, text in zip(columns, row_cells, strict=True):
            if not text:
                continue
            head = f"{name}:".ljust(label)
            lines = text.split("\n")
            if len(lines) > 1 and lines[0].endswith(":"):  # a map: its keys on lines below
                out.write(head.rstrip() + "\n")
                head = " " * label
            for number, line in enumerate(lines):
                body = line.lstrip(" ")
                depth = " " * (len(line) - len(body))
                first = (head if number == 0 else " " * label) + depth
                hanging = " " * (label + len(depth) + (2 if body.startswith("- ") else 0))
                wrapped = textwrap.wrap(
                    body,
                    width=max(width, label + 20),
                    initial_indent=first,
                    subsequent_indent=hanging,
                    break_on_hyphens=False,
                )
                out.write("\n".join(wrapped or [first.rstrip()]) + "\n")
