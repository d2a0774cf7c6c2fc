"""Create the project's data files (headerless CSVs in schema order, see scripts/dataset_schema.json).

    python -m tools.make_data [--rows 4177] [--inference-rows 1000] [--seed 7] [--out-dir data]
    python -m tools.make_data --drift [--out-dir data/drift]      # drifted inference data + ground truth
    python -m tools.make_data fetch-uci [--holdout N]              # real UCI Abalone (needs internet)
    python -m tools.make_data import --from FILE [--holdout N]   # your data set, with or without a header
    python -m tools.make_data synth [--rows N] [--missing 0.05]   # synthetic rows for any schema

import: columns are matched by name when the file has a header (else it must be in schema order), every value
is checked against scripts/dataset_schema.json (errors name file, line, column and value), missing values stay
empty cells (the preprocessing imputes them), rows without a target go to unlabelled-rows.csv, and the target
is written where the schema puts it. The default command writes the shipped abalone-like files (fixed seed);
provenance is recorded in <out-dir>/README.md. import, fetch-uci and the default command record the target's
plausible range in the schema (see `target_range`) unless it declares one: labels outside it are quarantined at
inference, never scored nor trained on.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import urllib.request
from pathlib import Path

import numpy as np
from steplib.csvio import is_number

try:
    from . import synth
except ImportError:  # loaded as a file (tests load it by path)
    import importlib.util as _ilu
    _spec = _ilu.spec_from_file_location("tools_synth", Path(__file__).with_name("synth.py"))
    synth = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(synth)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "scripts" / "dataset_schema.json"
UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/abalone/abalone.data"
TRAIN, INFER, TRUTH = "training-data.csv", "inference-data.csv", "ground-truth.csv"
DEFAULT_SEED = 7
# The shipped data set's columns, which the abalone-like generator below writes (whatever the current schema).
ABALONE_SCHEMA = {"name": "abalone", "target": "rings", "columns": [
    {"name": "sex", "type": "categorical", "categories": ["M", "F", "I"]},
    *({"name": n, "type": "float"} for n in ("length", "diameter", "height", "whole_weight", "shucked_weight",
                                             "viscera_weight", "shell_weight")),
    # target_range() of the default command's labels (1..21); tests/component/test_make_data.py checks it
    {"name": "rings", "type": "float", "min": 0, "max": 41}]}


class DataError(Exception):
    """Bad input data; the message names the file, the line and the problem."""


def load_schema(path: Path = SCHEMA_PATH):
    """The validated, typed schema (steplib.schema, the one reader); a broken schema is a DataError."""
    try:
        return synth.load_schema(path)
    except synth._steplib_schema().SchemaError as exc:
        raise DataError(str(exc)) from None


# ---------------------------------------------------------------- synthetic generator
def _generate(n: int, rng: np.random.Generator, drift: bool) -> list[list]:
    """Abalone-like rows: age drives size via a growth curve; weights follow length^3 allometry;
    the shell's share of the weight grows with age, so rings relate most to shell weight as in UCI."""
    # Sex mix and age by sex as in UCI (M 37%, F 31%, I 32%; infants younger). Drift: more infants, older.
    p_sex = [0.25, 0.25, 0.50] if drift else [0.366, 0.313, 0.321]
    sex = rng.choice(np.array(["M", "F", "I"]), size=n, p=p_sex)
    mean_age = np.select([sex == "M", sex == "F"], [10.7, 11.1], 7.9)
    sd_age = np.select([sex == "I"], [2.3], 2.9)
    age = np.clip(rng.normal(mean_age - 0.8, sd_age) + rng.gamma(2.0, 0.4, n), 1.0, 29.0)
    # Von Bertalanffy growth; individual growth rate varies (that variation is the irreducible error).
    k = 0.12 * np.exp(rng.normal(0.0, 0.40, n))
    # Drift: a faster-growing population, so the same size now means a younger animal (changed size->rings
    # relation). 1.5x breaks a model trained on the old population (MSE ~6.8 > 5.5) while a model that also
    # learns from labelled drifted rows can recover (~4.7); faster growth saturates sizes and is not learnable.
    if drift:
        k = k * 1.5
    length = 0.72 * (1.0 - np.exp(-k * (age + 1.0))) * np.exp(rng.normal(0.0, 0.03, n))
    if drift:  # and larger animals overall (shifted feature distributions)
        length = length * 1.12
    length = np.clip(length, 0.075, 0.9)
    diameter = length * np.clip(rng.normal(0.776, 0.03, n), 0.6, 0.95)
    height = length * np.clip(rng.normal(0.265, 0.035, n), 0.1, 0.5)
    whole = 5.0 * length**3 * np.exp(rng.normal(0.0, 0.10, n))
    shell_frac = np.clip(0.27 + 0.006 * (age - 10) + rng.normal(0.0, 0.025, n), 0.12, 0.55)
    shucked_frac = np.clip(0.45 - 0.005 * (age - 10) + rng.normal(0.0, 0.04, n), 0.2, 0.65)
    viscera_frac = np.clip(rng.normal(0.22, 0.025, n), 0.1, 0.35)
    rings = np.clip(np.rint(age), 1, 29).astype(int)
    rows = []
    for i in range(n):
        rows.append([
            str(sex[i]), f"{length[i]:.3f}", f"{diameter[i]:.3f}", f"{height[i]:.3f}", f"{whole[i]:.4f}",
            f"{whole[i] * shucked_frac[i]:.4f}", f"{whole[i] * viscera_frac[i]:.4f}",
            f"{whole[i] * shell_frac[i]:.4f}", str(int(rings[i])),
        ])
    return rows


def generate(out_dir: Path, rows: int, inference_rows: int, seed: int, drift: bool) -> dict:
    if rows < 1 or inference_rows < 1:
        raise DataError("--rows and --inference-rows must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    if not drift:  # training data is the un-drifted population; drift only changes what is scored later
        train = _generate(rows, np.random.default_rng(seed), drift=False)
        written[TRAIN] = _write_rows(out_dir / TRAIN, train)
    # A different stream than training so inference rows are new animals, not copies.
    infer = _generate(inference_rows, np.random.default_rng(seed + (1000 if drift else 1)), drift=drift)
    written[INFER] = _write_rows(out_dir / INFER, [r[:-1] for r in infer])
    written[TRUTH] = _write_rows(out_dir / TRUTH, [[r[-1]] for r in infer])
    kind = "synthetic, DRIFTED" if drift else "synthetic"
    cmd = f"python -m tools.make_data --rows {rows} --inference-rows {inference_rows} --seed {seed}"
    cmd += " --drift" if drift else ""
    _write_readme(out_dir, {name: f"{kind}: {n} rows, generated by `{cmd}`" for name, n in written.items()},
                  drift_note=drift, schema=ABALONE_SCHEMA, abalone_note=True)
    return written


# ---------------------------------------------------------------- import (any data set the schema describes)
MAX_ERRORS = 20  # errors listed per import; the rest are counted


class Table:
    """Imported rows in schema order (cells as the project's CSVs spell them; "" = missing)."""

    def __init__(self, schema, rows: list[list[str]], lines: list[int], source: str, header: bool):
        self.schema, self.rows, self.lines, self.source, self.header = schema, rows, lines, source, header
        names = schema.names
        self.target_index = schema.target_index
        self.missing_by_column = {n: sum(1 for r in rows if r[i] == "") for i, n in enumerate(names)}
        self.rows_with_missing = sum(1 for r in rows if "" in r)
        self.unlabelled = [i for i, r in enumerate(rows) if r[self.target_index] == ""]

    def labelled_rows(self) -> list[list[str]]:
        return [r for r in self.rows if r[self.target_index] != ""]

    def report(self) -> list[str]:
        n, target = len(self.rows), self.schema.target
        lines = [f"{self.source}: {n} rows, {'columns matched by header' if self.header else 'no header: schema column order'}"]
        if self.rows_with_missing:
            counts = ", ".join(f"{k} {v}" for k, v in self.missing_by_column.items() if v)
            lines.append(f"{self.rows_with_missing} of {n} rows have missing values ({counts}); missing features "
                         "stay empty cells, the preprocessing imputes them (fitted on the train split)")
        else:
            lines.append("no missing values")
        if self.unlabelled:
            lines.append(f"{len(self.unlabelled)} rows have no value for the target '{target}': they are left out of "
                         f"training-data.csv (nothing to learn from) and written to {UNLABELLED} (features only, "
                         "ready to score as inference data)")
        return lines


UNLABELLED = "unlabelled-rows.csv"


def _norm(name: str) -> str:
    return name.strip().lower()


def _header_map(row: list[str], schema, source: str) -> list[int] | None:
    """Source column index of each schema column when `row` is a header, None when it is data."""
    names = schema.names
    wanted = {_norm(n): n for n in names}
    cells = [_norm(v) for v in row]
    if not any(c in wanted for c in cells):
        if _looks_like_data(row, schema):
            return None
        raise DataError(f"{source}: line 1: looks like a header ({', '.join(v.strip() for v in row)[:200]}) but "
                        f"names none of the schema's columns ({', '.join(names)})")
    problems = []
    dupes = sorted({row[i].strip() for i, c in enumerate(cells) if cells.count(c) > 1})
    if dupes:
        problems.append(f"repeated columns: {', '.join(dupes)}")
    missing = [n for n in names if _norm(n) not in cells]
    if missing:
        problems.append(f"missing schema columns: {', '.join(missing)}")
    extra = [row[i].strip() for i, c in enumerate(cells) if c not in wanted]
    if extra:
        problems.append(f"columns the schema does not have: {', '.join(extra)} (remove them from the file, "
                        "or describe them in scripts/dataset_schema.json)")
    if problems:
        raise DataError(f"{source}: line 1: the header does not match scripts/dataset_schema.json: "
                        + "; ".join(problems) + " (if the columns are in schema order under other names, "
                        "pass --ignore-header)")
    return [cells.index(_norm(n)) for n in names]


def _looks_like_data(row: list[str], schema) -> bool:
    """A first line without any schema column name is data if it has a number somewhere (or the schema
    has no numeric column); a line of words only is a header that names the wrong columns."""
    return all(c.is_categorical for c in schema.columns) or any(is_number(value) for value in row)


def _check_value(value: str, col, tokens, where: str) -> str:
    """The cell as the project's CSVs spell it ("" = missing), or a DataError naming where and what."""
    value = value.strip()
    if value in tokens or value == "":
        return ""
    name = col.name
    if col.is_categorical:
        label = col.category(value)  # numeric labels match by value: "3.0" is category 3, written "3"
        if label is not None:
            return label
        raise DataError(f"{where}, column '{name}': unknown category {value!r} "
                        f"(allowed: {', '.join(col.categories)})")
    if not is_number(value):
        raise DataError(f"{where}, column '{name}': non-numeric value {value!r} in a numeric column")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"{where}, column '{name}': non-finite value {value!r}")
    if col.type == "int" and not number.is_integer():
        raise DataError(f"{where}, column '{name}': {value!r} is not a whole number (the column is int)")
    if not col.in_range(number):
        raise DataError(f"{where}, column '{name}': {value!r} is outside the schema's range {col.range_text()}")
    return value


def read_table(text: str, source: str, schema, ignore_header: bool = False) -> Table:
    """Parse a CSV with or without a header into schema order, checking every value against the schema.
    All problems are collected (up to MAX_ERRORS) and raised together, each naming file, line, column, value."""
    cols = schema.columns
    try:
        lines = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise DataError(f"{source}: malformed CSV: {exc}") from None
    numbered = [(i, r) for i, r in enumerate(lines, start=1) if r and any(v.strip() for v in r)]
    if not numbered:
        raise DataError(f"{source}: file is empty")
    if ignore_header:  # the first line names columns differently, but they are in schema order
        numbered = numbered[1:] if numbered[0][0] == 1 else numbered
        order = None
    else:
        order = _header_map(numbered[0][1], schema, source) if numbered[0][0] == 1 else None
    header = order is not None
    if header:
        numbered = numbered[1:]
        width = len(lines[0])
    else:
        order, width = list(range(len(cols))), len(cols)
    tokens = schema.missing_tokens
    rows, line_numbers, errors = [], [], []
    for lineno, row in numbered:
        if len(row) != width:
            expected = f"{width} columns" + ("" if header else f" ({', '.join(schema.names)})")
            errors.append(f"{source}: line {lineno}: expected {expected}, found {len(row)}")
            continue
        clean = []
        for col, index in zip(cols, order):
            try:
                clean.append(_check_value(row[index], col, tokens, f"{source}: line {lineno}"))
            except DataError as exc:
                errors.append(str(exc))
                clean = None
                break
        if clean is not None:
            rows.append(clean)
            line_numbers.append(lineno)
    if errors:
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise DataError(f"{len(errors)} bad line(s); nothing was written:\n" + "\n".join(errors[:MAX_ERRORS]) + more)
    if not rows:
        raise DataError(f"{source}: no data rows (only a header)")
    return Table(schema, rows, line_numbers, source, header)


def parse_table(text: str, source: str, schema) -> list[list[str]]:
    """Rows in schema order (bench/bench_transform.py uses this)."""
    return read_table(text, source, schema).rows


def import_rows(rows: list[list[str]], source: str, out_dir: Path, holdout: int, seed: int,
                schema=None) -> dict:
    """Write training-data.csv (schema order, target where the schema has it) and, with a holdout, that many
    random labelled rows as inference-data.csv (features) + ground-truth.csv (target), row-aligned.
    Rows without a target go to unlabelled-rows.csv (features only)."""
    schema = schema or load_schema()
    t = schema.target_index
    labelled = [r for r in rows if r[t] != ""]
    unlabelled = [r for r in rows if r[t] == ""]
    if not labelled:
        raise DataError(f"{source}: no row has a value for the target '{schema.target}'")
    if holdout < 0 or holdout >= len(labelled):
        raise DataError(f"--holdout must be between 0 and {len(labelled) - 1} "
                        f"(the data has {len(labelled)} labelled rows)")
    out_dir.mkdir(parents=True, exist_ok=True)
    idx = np.random.default_rng(seed).permutation(len(labelled))
    held = set(idx[:holdout].tolist())
    train = [r for i, r in enumerate(labelled) if i not in held]  # original order kept
    features = lambda r: r[:t] + r[t + 1:]  # noqa: E731
    written = {TRAIN: _write_rows(out_dir / TRAIN, train)}
    notes = {TRAIN: f"REAL data: {len(train)} rows imported from {source}"}
    if holdout:
        test = [labelled[i] for i in sorted(held)]
        written[INFER] = _write_rows(out_dir / INFER, [features(r) for r in test])
        written[TRUTH] = _write_rows(out_dir / TRUTH, [[r[t]] for r in test])
        notes[INFER] = notes[TRUTH] = f"REAL data: {holdout} rows held out of {source} (seed {seed})"
    else:
        for name in (INFER, TRUTH):
            if (out_dir / name).exists():
                notes[name] = "not written by this import (left as it was)"
    stale = out_dir / UNLABELLED
    if unlabelled:
        written[UNLABELLED] = _write_rows(stale, [features(r) for r in unlabelled])
        notes[UNLABELLED] = f"REAL data: {len(unlabelled)} rows of {source} without a target value (features only)"
    elif stale.exists():
        stale.unlink()  # from an earlier import: it would not belong to this data set
    _write_readme(out_dir, notes, drift_note=False, schema=schema)
    return written


# ---------------------------------------------------------------- the target's plausible range
def target_range(labels, declared_min=None, declared_max=None) -> tuple:
    """(min, max) for the target in the schema: the observed labels widened by one observed span on each side,
    rounded outward to two significant digits of the span. Why one span: the data check quarantines labels
    outside the range, so it must admit a real shift of the population (the span of a few thousand labels is
    about 6 standard deviations, so the margin admits shifts of several; the demo's drift moves labels by 1.5)
    while refusing what no population shift explains (a unit slip of x10, a sentinel like 1e6 or 1e300); a
    wider margin would let those through for the many targets whose span is close to their values (counts,
    ages, scores). The stricter reading at zero: when
    no observed label is negative the range never goes below 0 (counts, ages, prices), and when none is
    positive never above 0. A bound the schema already declares is the user's and is kept. Without spread
    (every label the same) nothing is derived: the training preprocessing refuses a constant target anyway."""
    low, high = min(labels), max(labels)
    span = high - low
    if span <= 0:
        return declared_min, declared_max
    step = 10.0 ** (math.floor(math.log10(span)) - 1)
    digits = max(0, -round(math.log10(step)))
    lo = max(low - span, 0.0) if low >= 0 else low - span
    hi = min(high + span, 0.0) if high <= 0 else high + span

    def tidy(value):  # a JSON number as a person writes it: 41, not 41.00000000001
        value = round(value, digits)
        return int(value) if float(value).is_integer() else value

    lo, hi = tidy(math.floor(lo / step) * step), tidy(math.ceil(hi / step) * step)
    return (lo if declared_min is None else declared_min), (hi if declared_max is None else declared_max)


def schema_text(raw: dict) -> str:
    """The schema file in the shipped layout: one key per line, one column per line."""
    parts = []
    for key, value in raw.items():
        if key == "columns":
            columns = ",\n".join("    " + json.dumps(c) for c in value)
            parts.append(f'  "columns": [\n{columns}\n  ]')
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def record_target_range(schema_path: Path, labels: list[str]) -> str:
    """Write target_range() of these labels (cells; "" = missing) into the schema file where it declares no
    bound; the line to print. A label outside a declared bound is a DataError (the data would be quarantined)."""
    schema = load_schema(schema_path)
    raw = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    col = next(c for c in raw["columns"] if c["name"] == schema.target)
    values = [float(v) for v in labels if v != ""]
    if not values:
        raise DataError(f"no labels for the target '{schema.target}'")
    outside = [v for v in values if not schema.target_column.in_range(v)]
    if outside:
        raise DataError(f"{schema_path}: {len(outside)} label(s) of '{schema.target}' (first {outside[0]:g}) are "
                        f"outside the range the schema declares, {schema.target_column.range_text()}")
    declared = col.get("min"), col.get("max")
    low, high = target_range(values, *declared)
    seen = f"labels seen: {min(values):g} to {max(values):g}"
    if (low, high) == declared:
        if None in declared:
            return f"{schema_path}: no range derived for the target '{schema.target}': every label is {values[0]:g}"
        return f"{schema_path}: target '{schema.target}' range [{low}, {high}] kept as the schema declares it ({seen})"
    col.update({k: v for k, v in (("min", low), ("max", high)) if v is not None})
    synth.as_schema(raw)  # still a valid schema before it is written
    Path(schema_path).write_text(schema_text(raw), encoding="utf-8")
    return (f"{schema_path}: recorded the target '{schema.target}' range [{low}, {high}] ({seen}, one span of "
            "margin each side; labels outside it are quarantined at inference)")


def _labels(path: Path, index: int) -> list[str]:
    with open(path, newline="") as f:
        return [row[index] for row in csv.reader(f) if row]


def fetch_uci(url: str, timeout: float = 60.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed, documented URL)
            return resp.read().decode("utf-8")
    except (OSError, ValueError) as exc:
        raise DataError(f"could not download {url}: {exc}. Offline? Use `python -m tools.make_data import "
                        f"--from FILE` with a local copy instead") from exc


# ---------------------------------------------------------------- output helpers
def _write_rows(path: Path, rows: list[list[str]]) -> int:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return len(rows)


def _write_readme(out_dir: Path, notes: dict, drift_note: bool, schema=None, abalone_note: bool = False) -> None:
    schema = synth.as_schema(schema) if schema is not None else load_schema()
    target = schema.target
    names = schema.names
    position = "last" if names[-1] == target else f"column {names.index(target) + 1} of {len(names)}"
    lines = [
        "# Data files",
        "",
        "Headerless CSVs in the column order of `scripts/dataset_schema.json` (kept headerless on purpose;",
        "this sidecar says where they came from). An empty cell is a missing value.",
        "",
        f"- `training-data.csv`: all schema columns, the target (`{target}`) where the schema puts it ({position}).",
        "- `inference-data.csv`: the feature columns only, in schema order.",
        "- `ground-truth.csv`: one column, the target, row-aligned with `inference-data.csv`.",
        "",
        "## Provenance",
        "",
    ]
    lines += [f"- `{name}`: {note}" for name, note in notes.items()]
    if abalone_note:
        lines += [
            "",
            "Synthetic rows are abalone-LIKE, not real measurements: a growth curve links age to size, weights follow",
            "length^3, and the shell's share of the weight grows with age. The real UCI Abalone data set (Nash et al.,",
            "1994, CC BY 4.0) can replace them with `python -m tools.make_data fetch-uci` or",
            "`python -m tools.make_data import --from FILE`.",
        ]
    if drift_note:
        lines += ["", "DRIFTED: more infants, larger animals, and faster growth (same size = fewer rings), so",
                  "data-quality checks flag drift and a model trained on the normal data has a high MSE."]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")


def synthesize(out_dir: Path, schema, rows: int, inference_rows: int, seed: int, missing: float) -> dict:
    """Schema-driven synthetic files (tools/synth.py) for a data set of any shape."""
    if rows < 1 or inference_rows < 1:
        raise DataError("--rows and --inference-rows must be at least 1")
    train = synth.generate(schema, rows, seed, missing=missing)
    scored = synth.generate(schema, inference_rows, seed + 1, missing=missing)
    written = synth.write_split(train, schema, out_dir, training=True)
    written.update(synth.write_split(scored, schema, out_dir, training=False))
    cmd = (f"python -m tools.make_data synth --rows {rows} --inference-rows {inference_rows} --seed {seed}"
           f" --missing {missing}")
    _write_readme(out_dir, {n: f"synthetic from the schema: {k} rows, generated by `{cmd}`"
                            for n, k in written.items()}, drift_note=False, schema=schema)
    return written


# ---------------------------------------------------------------- CLI
def read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.make_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=4177, help="training rows (UCI has 4,177)")
    p.add_argument("--inference-rows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--drift", action="store_true", help="write drifted inference data + ground truth only")
    p.add_argument("--out-dir", type=Path, default=None, help="default: data/ (data/drift/ with --drift)")
    sub = p.add_subparsers(dest="command")
    f = sub.add_parser("fetch-uci", help="download the real UCI Abalone data set")
    f.add_argument("--url", default=UCI_URL)
    i = sub.add_parser("import", help="import a CSV of your data set (header optional; checked against the schema)")
    i.add_argument("--from", dest="source", type=Path, required=True)
    i.add_argument("--ignore-header", action="store_true",
                   help="skip line 1 and take the columns in schema order (a header with other names)")
    g = sub.add_parser("synth", help="synthetic data for any schema (tools/synth.py)")
    g.add_argument("--rows", type=int, default=2000)
    g.add_argument("--inference-rows", type=int, default=500)
    g.add_argument("--missing", type=float, default=0.0, help="share of feature cells left empty")
    for sp in (f, i):
        sp.add_argument("--holdout", type=int, default=0,
                        help="move N random labelled rows to inference-data.csv/ground-truth.csv "
                             "(default 0: training only)")
    for sp in (f, i, g):
        sp.add_argument("--seed", type=int, default=DEFAULT_SEED)
        sp.add_argument("--out-dir", type=Path, default=None, help="default: data/")
        sp.add_argument("--schema", type=Path, default=SCHEMA_PATH, help="default: scripts/dataset_schema.json")
    args = p.parse_args(argv)
    try:
        if args.command is None:
            if load_schema().name != "abalone":
                raise DataError("the default generator makes the abalone-like files of the shipped schema; for "
                                "your schema use `python -m tools.make_data synth` or `import --from FILE`")
            out = args.out_dir or ROOT / "data" / ("drift" if args.drift else "")
            written = generate(out, args.rows, args.inference_rows, args.seed, args.drift)
            if not args.drift:  # the same rule as import, on every un-drifted label written
                print(record_target_range(SCHEMA_PATH, _labels(out / TRAIN, -1) + _labels(out / TRUTH, 0)))
        else:
            out = args.out_dir or ROOT / "data"
            schema = load_schema(args.schema)
            if args.command == "synth":
                written = synthesize(out, schema, args.rows, args.inference_rows, args.seed, args.missing)
            else:
                source = args.url if args.command == "fetch-uci" else str(args.source)
                text = fetch_uci(args.url) if args.command == "fetch-uci" else read_source(args.source)
                table = read_table(text, source, schema, getattr(args, "ignore_header", False))
                for line in table.report():
                    print(line)
                written = import_rows(table.rows, source, out, args.holdout, args.seed, schema)
                # from every labelled row (training and held out): the held-out batch must pass the data check
                print(record_target_range(args.schema, [r[schema.target_index] for r in table.rows]))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, n in written.items():
        print(f"wrote {out / name} ({n} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
