"""Input: the CSV files of a data set, their header, and their rows in bounded chunks."""
from __future__ import annotations

import csv
import glob
import json
import os
from typing import Iterator

import pandas as pd

from ..csvio import is_number
from ..errors import InputError

# Rows per chunk: about 4M cells, so a chunk's frame stays near 32 MiB of floats whatever the width.
CHUNK_CELLS = 1 << 22
MAX_CHUNK_ROWS = 1_000_000
MIN_CHUNK_ROWS = 10_000


class DataQualityError(InputError):
    """Bad or unreadable input; the message names the file and the problem."""


def list_csv_files(path: str) -> list[str]:
    """Every non-hidden file of a directory (recursive, sorted) or the one file given."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                       if os.path.isfile(f) and not os.path.basename(f).startswith("."))
        if not files:
            raise DataQualityError(f"input directory {path} contains no files")
        return files
    if not os.path.exists(path):
        raise DataQualityError(f"input {path} does not exist")
    return [path]


def read_header(path: str) -> list[str]:
    if os.path.getsize(path) == 0:
        raise DataQualityError(f"input file {path} is empty (expected a CSV header row and data rows)")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise DataQualityError(f"input file {path} is not UTF-8 text: {exc}") from None
    if not header or all(not h.strip() for h in header):
        raise DataQualityError(f"input file {path} has no header row")
    names = [h.strip() for h in header]
    if sum(is_number(n) for n in names) > len(names) / 2:
        raise DataQualityError(f"first line of input file {path} looks like data, not a header row "
                               f"({names[:6]}...): is the header row missing?")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataQualityError(f"input file {path} has duplicate column names: {dupes}")
    if any(not n for n in names):
        raise DataQualityError(f"input file {path} has an empty column name in its header")
    return names


def dataset_header(files: list[str]) -> list[str]:
    """The header every file shares."""
    columns = None
    for f in files:
        names = read_header(f)
        if columns is None:
            columns = names
        elif names != columns:
            raise DataQualityError(f"input file {f} has header {names}, but {files[0]} has {columns}")
    return columns


def chunk_rows(n_columns: int) -> int:
    """Rows per chunk; DQ_CHUNK_ROWS overrides (smaller chunks: less memory on a small instance)."""
    if os.environ.get("DQ_CHUNK_ROWS"):
        return max(1, int(os.environ["DQ_CHUNK_ROWS"]))
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, CHUNK_CELLS // max(1, n_columns)))


class Chunk:
    """Rows ``first_row ..`` (0-based data row of ``file``) of one file, as a DataFrame."""

    def __init__(self, file: str, key: str, index: int, first_row: int, frame: pd.DataFrame):
        self.file, self.key, self.index, self.first_row, self.frame = file, key, index, first_row, frame

    def where(self, position: int) -> str:
        return f"{os.path.basename(self.file)}, data row {self.first_row + position + 1}"


def read_chunks(path: str, columns: list[str], string_columns=(), rows: int | None = None) -> Iterator[Chunk]:
    """Every file's rows, chunk by chunk; the chunk key (file path relative to ``path``, chunk index)
    is the same whether a file is read in one pass over all files or on one instance of a sharded job."""
    files = list_csv_files(path)
    rows = rows or chunk_rows(len(columns))
    base = path if os.path.isdir(path) else os.path.dirname(path)
    dtype = {c: str for c in columns if c in set(string_columns)}
    for f in files:
        key = os.path.relpath(f, base)
        first = 0
        try:
            reader = pd.read_csv(f, dtype=dtype, skipinitialspace=True, chunksize=rows, header=0, names=columns)
            for index, frame in enumerate(reader):
                yield Chunk(f, key, index, first, frame)
                first += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataQualityError(f"cannot parse input file {f}: {str(exc).strip()}") from None


def load_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataQualityError(f"{what} file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataQualityError(f"{what} file {path} is not valid JSON: {exc}") from None


def write_json(path: str, doc) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, allow_nan=False)
        fh.write("\n")


def load_schema(path: str) -> list[dict]:
    """The data set schema's feature columns as the engine profiles them: read and validated by the one schema
    module (steplib.schema, the JSON Schema every step uses), categories in their canonical spelling. The
    target is not among them: data quality watches the inputs, a model's predictions get their own baseline."""
    from ..schema import load_schema as load_dataset_schema

    schema = load_dataset_schema(path)
    return [{"name": c.name, "type": "String" if c.is_categorical else ("Integral" if c.type == "int" else "Fractional"),
             "categories": list(c.categories) or None} for c in schema.features]
