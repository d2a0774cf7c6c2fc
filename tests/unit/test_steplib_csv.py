"""steplib.csvio: the one strict CSV reader (errors name file, line, column and value)."""

from __future__ import annotations

import pytest

from steplib import InputError
from steplib.csvio import read_numeric, read_table
from steplib.schema import from_dict

SCHEMA = from_dict({
    "name": "toy",
    "columns": [
        {"name": "y", "type": "float"},
        {"name": "kind", "type": "categorical", "categories": [1, 2, 3]},
        {"name": "x", "type": "float", "min": 0, "max": 100},
    ],
    "target": "y",
})


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_typed_rows_numeric_labels_and_trailing_blank_lines(tmp_path):
    path = write(tmp_path, "1.5,2,10\n2.5,3.0,20\n\n\n")
    rows, missing = read_table(path, SCHEMA, SCHEMA.columns)
    assert rows == [[1.5, "2", 10.0], [2.5, "3", 20.0]]
    assert missing == {"y": 0, "kind": 0, "x": 0}


@pytest.mark.parametrize("text, expected", [
    ("1,2,3\n\n4,2,5\n", "line 2: empty line"),
    ("1,2,3\n4,2\n", "line 2: expected 3 columns (y, kind, x), found 2"),
    ("1,2,3\n4,9,5\n", "line 2: unknown category '9' in column 'kind'"),
    ("1,2,3\n4,2,abc\n", "line 2: non-numeric value 'abc' in numeric column 'x'"),
    ("1,2,3\n4,2,inf\n", "line 2: non-finite value 'inf' in column 'x'"),
    ("1,2,3\n4,2,101\n", "line 2: value '101' in column 'x' is outside the schema range [0, 100]"),
    ("1,2,3\n4,2,NA\n", "line 2: missing value in numeric column 'x' ('NA'"),
    ("y,kind,x\n1,2,3\n", "line 1 looks like a header row"),
    ("", "file is empty"),
    ('1,2,"3\n', "malformed CSV"),
])
def test_bad_cells_name_file_line_column_value(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_table(path, SCHEMA, SCHEMA.columns)
    assert str(err.value).startswith(path)
    assert expected in str(err.value)


def test_as_text_keeps_numbers_as_written_and_spells_categories_canonically(tmp_path):
    rows, _ = read_table(write(tmp_path, "1.50,2.0,10\n2.5,3,NA\n"), SCHEMA, SCHEMA.columns, as_text=True,
                         allow_missing=["x"])
    assert rows == [["1.50", "2", "10"], ["2.5", "3", ""]]


def test_int_column_refuses_a_fraction_like_the_import_tool(tmp_path):
    schema = from_dict({"name": "toy", "target": "y", "columns": [
        {"name": "y", "type": "float"}, {"name": "count", "type": "int"}]})
    rows, _ = read_table(write(tmp_path, "1.5,3\n2.5,4.0\n"), schema, schema.columns)
    assert rows == [[1.5, 3.0], [2.5, 4.0]]  # 4.0 is a whole number
    path = write(tmp_path, "1.5,3\n2.5,4.5\n", "bad.csv")
    with pytest.raises(InputError, match=r"bad\.csv: line 2: value '4\.5' in int column 'count' is not a whole number"):
        read_table(path, schema, schema.columns)


def test_missing_and_unknown_allowed_where_the_caller_says(tmp_path):
    path = write(tmp_path, "NA,7,\n2,1,3\n")
    rows, missing = read_table(path, SCHEMA, SCHEMA.columns, allow_missing=["y", "x"], unknown_ok=["kind"])
    assert rows == [[None, "7", None], [2.0, "1", 3.0]]
    assert missing == {"y": 1, "kind": 0, "x": 1}


def test_non_utf8_is_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"1,2,\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_table(str(path), SCHEMA, SCHEMA.columns)


def test_read_numeric_with_and_without_header(tmp_path):
    assert read_numeric(write(tmp_path, "1,2\n3,4\n\n")) == [[1.0, 2.0], [3.0, 4.0]]
    path = write(tmp_path, "prediction,ground_truth\n1,2\n", "pairs.csv")
    assert read_numeric(path, header=["prediction", "ground_truth"]) == [[1.0, 2.0]]
    with pytest.raises(InputError, match="line 2: non-numeric value 'x' in numeric column 'ground_truth'"):
        read_numeric(write(tmp_path, "prediction,ground_truth\n1,x\n", "bad.csv"), header=["prediction", "ground_truth"])
    with pytest.raises(InputError, match="line 1: header must be 'prediction,ground_truth'"):
        read_numeric(write(tmp_path, "a,b\n1,2\n", "hdr.csv"), header=["prediction", "ground_truth"])
    with pytest.raises(InputError, match="no data rows after the header"):
        read_numeric(write(tmp_path, "prediction,ground_truth\n", "only.csv"), header=["prediction", "ground_truth"])
    with pytest.raises(InputError, match="line 2: non-finite value 'nan' in column '2'"):
        read_numeric(write(tmp_path, "1,2\n3,nan\n", "nan.csv"))
