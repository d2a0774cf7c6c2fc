"""scripts/train.py input_fn: the vectorized CSV parse gives the strict parser's values, and every input
the strict parser rejects still gets the strict parser's message (line, column, value)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("train_for_parse", Path(__file__).resolve().parents[2] / "scripts" / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)


def _formats(rng, n_rows, n_cols):
    x = rng.normal(0, 10.0 ** rng.integers(-8, 9, size=(n_rows, n_cols)))
    x[rng.random(x.shape) < 0.1] = 0.0
    x[rng.random(x.shape) < 0.1] = -0.0
    ints = np.round(x[:, :2])
    cells = [[repr(float(v)) for v in row] for row in x]
    for i, row in enumerate(cells):  # integers, exponents, few digits, padding: all of float()'s common forms
        row[0] = str(int(ints[i, 0]))
        row[1] = f"{x[i, 1]:.3e}"
        row[-1] = f"{x[i, -1]:.2f}"
    return "\n".join(",".join(row) for row in cells)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_vectorized_parse_equals_the_strict_parser(seed, trailing_newline):
    text = _formats(np.random.default_rng(seed), 2000, 10) + ("\n" if trailing_newline else "")
    fast = train._parse_numeric_csv_vectorized(text)
    assert fast is not None  # the common case takes the fast path
    strict = train.parse_numeric_csv(text, "body")
    assert fast.shape == strict.shape and np.array_equal(fast.view(np.int64), strict.view(np.int64))  # bit-equal
    assert np.array_equal(train.input_fn(text.encode(), "text/csv"), strict)


@pytest.mark.parametrize("body", [
    "1,2\n3,4,5\n", "1,2\n3\n", "1,2\n\n3,4\n", "1,2\n3,NA\n", "1,2\n3,nan\n", "1,2\n3,inf\n",
    "1,2\n3,\n", "1,2\n#3,4\n", "1,2\n3,4 x\n", "",
])
def test_rejected_input_keeps_the_strict_message(body):
    assert train._parse_numeric_csv_vectorized(body) is None
    with pytest.raises(Exception) as strict:
        train.parse_numeric_csv(body, "request body")
    with pytest.raises(ValueError) as served:
        train.input_fn(body, "text/csv")
    assert str(served.value) == str(strict.value)
    assert "line 2" in str(served.value) or "empty input" in str(served.value)  # names the line


def test_forms_only_the_strict_parser_reads_fall_back_to_it():
    for body in ('"1",2\n', "1_000,2\n", " 1 , 2 \n", "1,2\r\n3,4\r\n"):
        assert np.array_equal(train.input_fn(body, "text/csv"), train.parse_numeric_csv(body, "body"))
