"""The one strict CSV reader of the step scripts: every bad cell is an InputError naming file, line, column
and value; nothing is dropped silently.

Rules (the same for every file a job reads):
  * UTF-8 text, RFC 4180 quoting (csv module, strict).
  * Blank lines at the very end of a file are ignored (editors and ``AssembleWith=Line`` add them); a blank
    line followed by more data is an error.
  * Every row has the expected number of columns.
  * Numbers are finite; schema ranges hold; categories are ones the schema lists (or handled by the caller's
    unknown-category policy); missing values (the schema's tokens) only where the caller allows them.
  * A first line that spells the column names, or has text in most numeric columns, is reported as a header.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Iterable, Iterator, Sequence

from .errors import InputError
from .schema import Column, DatasetSchema

MISSING = None  # a missing cell in parsed rows


def _records(lines: Iterable[str], source: str, n_columns: int | None, names: Sequence[str] | None
             ) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped cells) of each data row; blank lines only at the end."""
    reader = csv.reader(lines, strict=True)
    blank_at = None
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not v.strip() for v in row) and len(row) <= 1:
                blank_at = blank_at or line
                continue
            if blank_at is not None:
                raise InputError(f"{source}: line {blank_at}: empty line (blank lines are allowed only at the end)")
            if n_columns is None:
                n_columns = len(row)
            if len(row) != n_columns:
                listed = f" ({', '.join(names)})" if names else ""
                raise InputError(f"{source}: line {line}: expected {n_columns} columns{listed}, found {len(row)}")
            yield line, [v.strip() for v in row]
    except csv.Error as exc:
        raise InputError(f"{source}: line {reader.line_num}: malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc})") from None


def records(path: str, n_columns: int | None = None, names: Sequence[str] | None = None
            ) -> Iterator[tuple[int, list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        yield from _records(f, path, n_columns, names)


def text_records(text: str, source: str, n_columns: int | None = None) -> Iterator[tuple[int, list[str]]]:
    return _records(io.StringIO(text, newline=""), source, n_columns, None)


def is_number(text: str) -> bool:
    """Whether float() reads the text (header detection and numeric category labels use it)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def looks_like_header(cells: Sequence[str], columns: Sequence[Column], missing_tokens=frozenset()) -> bool:
    """The column names, or text (not a missing-value token) where most numeric columns expect numbers."""
    if [c.lower() for c in cells] == [col.name.lower() for col in columns]:
        return True
    numeric = [v for v, col in zip(cells, columns) if col.is_numeric and v not in missing_tokens]
    return bool(numeric) and sum(not is_number(v) for v in numeric) > len(numeric) / 2


def parse_number(text: str, source: str, line: int, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{source}: line {line}: non-numeric value {text!r} in numeric column '{name}'") from None
    if not math.isfinite(value):
        raise InputError(f"{source}: line {line}: non-finite value {text!r} in column '{name}'")
    return value


def read_table(path: str, schema: DatasetSchema, columns: Sequence[Column], *, allow_missing: Iterable[str] = (),
               unknown_ok: Iterable[str] = (), check_ranges: bool = True, what: str = "data",
               as_text: bool = False, lines: list[int] | None = None) -> tuple[list[list], dict[str, int]]:
    """Parse a headerless CSV whose columns are ``columns`` (schema objects, file order).

    Numeric cells become floats, categorical cells canonical labels; a missing cell becomes None where its
    column is in ``allow_missing`` (an error elsewhere); a category the schema does not list is kept as its
    text where the column is in ``unknown_ok`` (the caller applies the unknown-category policy), an error
    elsewhere. ``as_text``: validate the same way, but return each cell's stripped text (missing: "") for
    files that pass values through unchanged. ``lines``: gets each row's line number appended. Returns the rows
    and the number of missing cells per column.
    """
    allow_missing, unknown_ok = set(allow_missing), set(unknown_ok)
    names = [c.name for c in columns]
    rows: list[list] = []
    missing = {n: 0 for n in names}
    for line, cells in records(path, len(columns), names):
        if line == 1 and looks_like_header(cells, columns, schema.missing_tokens):
            raise InputError(f"{path}: line 1 looks like a header row ({','.join(cells)[:80]}); {what} files "
                             f"are headerless, columns in schema order: {','.join(names)}")
        row = []
        for col, text in zip(columns, cells):
            if text in schema.missing_tokens:
                if col.name not in allow_missing:
                    kind = "categorical" if col.is_categorical else "numeric"
                    raise InputError(f"{path}: line {line}: missing value in {kind} column '{col.name}' "
                                     f"({text!r}; not allowed here)")
                missing[col.name] += 1
                row.append(MISSING)
            elif col.is_categorical:
                label = col.category(text)
                if label is None:
                    if col.name not in unknown_ok:
                        raise InputError(f"{path}: line {line}: unknown category {text!r} in column '{col.name}' "
                                         f"(allowed: {', '.join(col.categories)})")
                    label = text
                row.append(label)
            else:
                value = parse_number(text, path, line, col.name)
                if col.type == "int" and not value.is_integer():  # as strict as the import tool
                    raise InputError(f"{path}: line {line}: value {text!r} in int column '{col.name}' is not a "
                                     "whole number")
                if check_ranges and not col.in_range(value):
                    raise InputError(f"{path}: line {line}: value {text!r} in column '{col.name}' is outside "
                                     f"the schema range {col.range_text()}")
                row.append(value)
        # as text: numbers as written, categories in their canonical spelling ("1.0" of categories [1, 2] is "1")
        rows.append([("" if v is MISSING else v if col.is_categorical else t) for v, t, col in zip(row, cells, columns)]
                     if as_text else row)
        if lines is not None:
            lines.append(line)
    if not rows:
        raise InputError(f"{path}: file is empty")
    return rows, missing


def read_numeric(path: str, n_columns: int | None = None, names: Sequence[str] | None = None,
                 header: Sequence[str] | None = None) -> list[list[float]]:
    """A numeric CSV (transformed splits, predictions, prediction/label pairs): every cell a finite number.
    ``header``: the exact first line the file must start with (None: headerless)."""
    rows: list[list[float]] = []
    it = records(path, n_columns if n_columns is not None else (len(header) if header else None), names or header)
    if header is not None:
        first = next(it, None)
        if first is None:
            raise InputError(f"{path}: file is empty")
        if first[1] != list(header):
            raise InputError(f"{path}: line 1: header must be '{','.join(header)}', found {','.join(first[1])!r}")
    labels = list(names or header or [])
    for line, cells in it:
        rows.append([parse_number(v, path, line, labels[i] if i < len(labels) else str(i + 1))
                     for i, v in enumerate(cells)])
    if not rows:
        raise InputError(f"{path}: " + ("no data rows after the header" if header is not None else "file is empty"))
    return rows
