"""Seeded, schema-driven data for tests, the demo and benchmarks: any data set the schema describes.

    generate(schema, n, seed)                 rows in schema order: numeric columns, categoricals (numbers or
                                              text), the target as a learnable function of the features + noise
    generate(..., missing=0.05)               that share of feature cells left empty
    generate(..., drift=True)                 the drifted population (see `apply_drift`)
    generate(..., shift=0.5, category_probs=) a graded covariate shift for data-quality checks: every numeric
                                              feature moved by `shift` of its scale, categoricals in another mix
    SAMPLE_SCHEMA                             a fixed schema (one categorical, seven non-negative features, a
                                              target) for tests, benchmarks and tools about the engines, not the
                                              data set
    apply_drift(frame, schema, reference=...) the same deterministic, learnable shift applied to any rows,
                                              real ones included (the demo's drifted batches)

The drift: the first numeric feature moves past its whole reference range (a covariate shift data-quality
checks flag) and, in those rows, the target moves 1.5 standard deviations (a concept shift that breaks a
model trained before it). Because the moved feature marks the drifted rows, a model retrained on labelled
drifted rows learns the shift back. Shifts go the way the schema's min/max leave room for.

`schema` is steplib.schema's DatasetSchema (the one reader; a parsed dict or a path is accepted too).
Values are typed in the frame (float with NaN for numeric columns, the canonical label or None for
categoricals); `write_csv` writes the project's convention: headerless, schema order, empty cell = missing.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

CONCEPT_SEED = 20240611  # one target function for every seed: training and scored batches share it
MARKER_GAP_SD = 1.0
TARGET_SHIFT_SD = 1.5

# For code about the engines (data-quality checks, the report), not the data set: a shape of its own, so those
# tests and benchmarks hold whatever scripts/dataset_schema.json describes.
SAMPLE_SCHEMA = {
    "name": "sample", "target": "y",
    "columns": [{"name": "group", "type": "categorical", "categories": ["a", "b", "c"]}]
    + [{"name": f"x{i}", "type": "float", "min": 0} for i in range(1, 8)]
    + [{"name": "y", "type": "float", "min": 0}],
}


# ---------------------------------------------------------------- schema (steplib.schema is the one reader)
def _steplib_schema():
    try:
        from steplib import schema as module
    except ImportError:  # a venv made before steplib was packaged: it lives beside the step scripts
        sys.path.append(str(Path(__file__).resolve().parents[1] / "scripts"))
        from steplib import schema as module
    return module


def load_schema(path) -> "DatasetSchema":  # noqa: F821
    """The validated, typed schema (steplib.schema); raises its SchemaError naming the file."""
    return _steplib_schema().load_schema(str(path))


def as_schema(schema):
    """A DatasetSchema from a DatasetSchema, a parsed JSON dict or a path."""
    module = _steplib_schema()
    if isinstance(schema, module.DatasetSchema):
        return schema
    if isinstance(schema, dict):
        return module.from_dict(schema, "<schema>")
    return module.load_schema(str(schema))


def feature_columns(schema) -> list:
    return as_schema(schema).features


def column(schema, name: str):
    return as_schema(schema).column(name)


def category_text(value) -> str:
    """How a category is spelled in the CSVs: the schema's text, or a number without a needless '.0'."""
    return _steplib_schema().canonical_label(value)


# ---------------------------------------------------------------- generator
def _location_scale(col) -> tuple[float, float]:
    lo, hi = col.min, col.max
    if lo is not None and hi is not None:
        return (lo + hi) / 2.0, (hi - lo) / 8.0
    if lo is not None:
        return lo + 4.0, 1.0
    if hi is not None:
        return hi - 4.0, 1.0
    return 0.0, 1.0


class _Concept:
    """The hidden target function, fixed by the schema's columns (not by the batch's seed)."""

    def __init__(self, schema):
        rng = np.random.default_rng(CONCEPT_SEED)
        self.numeric = [c.name for c in schema.numeric_features]
        self.categorical = [c.name for c in schema.categorical_features]
        self.weights = rng.uniform(0.5, 1.5, len(self.numeric)) * rng.choice([-1.0, 1.0], len(self.numeric))
        self.cat_probs = {c.name: rng.dirichlet(np.full(len(c.categories), 4.0)) for c in schema.categorical_features}
        self.cat_effects = {c.name: rng.normal(0.0, 0.8, len(c.categories)) for c in schema.categorical_features}
        # standardize the signal with a large fixed sample, so target_sd means what it says
        z = rng.normal(size=(20000, len(self.numeric)))
        codes = {n: rng.choice(len(p), 20000, p=p) for n, p in self.cat_probs.items()}
        s = self._signal(z, codes)
        self.mean, self.sd = float(s.mean()), float(s.std()) or 1.0

    def _signal(self, z: np.ndarray, codes: dict) -> np.ndarray:
        s = z @ self.weights if len(self.numeric) else np.zeros(len(next(iter(codes.values()))))
        if z.shape[1] >= 1:
            s = s + 0.4 * (z[:, 0] ** 2 - 1.0)  # mild curvature and an interaction: not just a plane
        if z.shape[1] >= 2:
            s = s + 0.3 * z[:, 0] * z[:, 1]
        for name, code in codes.items():
            s = s + self.cat_effects[name][code]
        return s

    def signal(self, z: np.ndarray, codes: dict) -> np.ndarray:
        return (self._signal(z, codes) - self.mean) / self.sd


def category_mix(schema, name: str) -> list[float]:
    """The default share of each category of `name` (schema order) in generated rows."""
    schema = as_schema(schema)
    return _Concept(schema).cat_probs[schema.column(name).name].tolist()


def target_scale(schema, target_sd: float | None, target_mean: float | None) -> tuple[float, float]:
    col = as_schema(schema).target_column
    loc, scale = _location_scale(col)
    if col.min is None and col.max is None:
        loc, scale = 10.0, 3.0
    return (loc if target_mean is None else target_mean), (scale if target_sd is None else target_sd)


def generate(schema, n: int, seed: int, *, drift: bool = False, missing: float = 0.0,
             missing_target: float = 0.0, target_sd: float | None = None, noise_sd: float | None = None,
             target_mean: float | None = None, shift: float = 0.0,
             category_probs: dict | None = None) -> pd.DataFrame:
    """n rows in schema order. target_sd/noise_sd set the target's spread and its irreducible noise
    (default: from the target's min/max, else 3 and 1); `scales_for_threshold` picks them for an MSE threshold.
    shift moves every numeric feature by that many of its scales (the target does not follow: a pure covariate
    shift); category_probs {column: probabilities in schema order} replaces a categorical's mix
    (`category_mix` gives the default one)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    schema = as_schema(schema)
    rng = np.random.default_rng(seed)
    concept = _Concept(schema)
    frame = {}
    z = rng.normal(size=(n, len(concept.numeric)))
    codes = {}
    for j, name in enumerate(concept.numeric):
        col = schema.column(name)
        loc, scale = _location_scale(col)
        values = loc + scale * (z[:, j] + shift)
        frame[name] = _fit_column(values, col)
    for name in concept.categorical:
        col = schema.column(name)
        probs = concept.cat_probs[name][::-1] if drift else concept.cat_probs[name]  # drift: another mix
        if category_probs and name in category_probs:
            probs = np.asarray(category_probs[name], dtype=float)
            if len(probs) != len(col.categories) or np.any(probs < 0) or not math.isclose(probs.sum(), 1.0):
                raise ValueError(f"category_probs[{name!r}]: {len(col.categories)} non-negative shares adding to 1")
        codes[name] = rng.choice(len(probs), n, p=probs)
        frame[name] = np.array(col.categories, dtype=object)[codes[name]]
    mean, sd = target_scale(schema, target_sd, target_mean)
    noise = (sd / 3.0) if noise_sd is None else noise_sd
    signal_sd = math.sqrt(max(sd ** 2 - noise ** 2, 0.0))
    y = mean + signal_sd * concept.signal(z, codes) + noise * rng.normal(size=n)
    frame[schema.target] = _fit_column(y, schema.target_column)
    df = pd.DataFrame({c.name: frame[c.name] for c in schema.columns})
    if drift:
        marker = marker_column(schema)
        step = None
        if marker is not None:  # 8 scales: past any normal sample (|z| > 4 is rarer than 1 in 15,000)
            loc, scale = _location_scale(marker)
            step = _shift(marker, loc + 4 * scale, 8 * scale, loc - 4 * scale)
        df = apply_drift(df, schema, target_sd=sd, marker_step=step)
    return with_missing(df, schema, missing, missing_target, rng)


def _fit_column(values: np.ndarray, col) -> np.ndarray:
    lo, hi = col.min, col.max
    values = np.clip(values, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return np.rint(values) if col.type == "int" else values


def with_missing(df: pd.DataFrame, schema, share: float, target_share: float,
                 rng: np.random.Generator) -> pd.DataFrame:
    df = df.copy()
    schema = as_schema(schema)
    for col in schema.columns:
        p = target_share if col.name == schema.target else share
        if p <= 0:
            continue
        mask = rng.random(len(df)) < p
        df[col.name] = df[col.name].astype(object if col.is_categorical else float)
        df.loc[mask, col.name] = None if col.is_categorical else np.nan
    return df


def scales_for_threshold(threshold: float) -> dict:
    """Target spread and noise for an MSE threshold: a fitted model lands well under it (noise variance is
    an eighth of it), a model that misses the drift lands far over it."""
    root = math.sqrt(threshold)
    return {"target_sd": 1.3 * root, "noise_sd": 0.35 * root}


# ---------------------------------------------------------------- drift (synthetic or real rows)
def marker_column(schema):
    """The feature whose shift marks drifted rows: the first numeric feature (None: there is none)."""
    numeric = as_schema(schema).numeric_features
    return numeric[0] if numeric else None


def _shift(col, top: float, amount: float, bottom: float | None = None) -> float:
    """+amount, or -amount when the schema's max leaves no room above `top` and its min leaves room below
    `bottom` (default: top)."""
    hi, lo = col.max, col.min
    bottom = top if bottom is None else bottom
    if hi is not None and top + amount > hi and (lo is None or bottom - amount >= lo):
        return -amount
    return amount


def apply_drift(df: pd.DataFrame, schema, reference: pd.DataFrame | None = None,
                target_sd: float | None = None, marker_step: float | None = None) -> pd.DataFrame:
    """Rows of the drifted population: the marker feature moved by its reference range + MARKER_GAP_SD standard
    deviations, the target by TARGET_SHIFT_SD standard deviations (reference: `reference`, default the rows)."""
    schema = as_schema(schema)
    ref = df if reference is None else reference
    out = df.copy()
    marker = marker_column(schema)
    if marker is not None:
        values = pd.to_numeric(ref[marker.name], errors="coerce")
        # past the whole reference range plus a gap: drifted rows never overlap the old ones, so the shift is
        # learnable from labelled drifted rows (a shift of a few sd leaves an overlap no model can separate)
        width = float(values.max() - values.min()) + MARKER_GAP_SD * (float(values.std()) or 1.0)
        step = marker_step if marker_step is not None else \
            _shift(marker, float(values.max() if width > 0 else values.mean()), width, float(values.min()))
        out[marker.name] = _fit_column(pd.to_numeric(out[marker.name]).to_numpy(float) + step, marker)
    target = schema.target_column
    y_ref = pd.to_numeric(ref[target.name], errors="coerce")
    sd_y = target_sd if target_sd is not None else (float(y_ref.std()) or 1.0)
    step = _shift(target, float(y_ref.mean()), TARGET_SHIFT_SD * sd_y)
    out[target.name] = _fit_column(pd.to_numeric(out[target.name]).to_numpy(float) + step, target)
    return out


# ---------------------------------------------------------------- CSV in the project's convention
def cell(value, col) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if col.is_categorical:
        return category_text(value)
    if col.type == "int" or float(value).is_integer():
        return str(int(value))
    return f"{float(value):.6g}"


def rows_text(df: pd.DataFrame, cols) -> list[list[str]]:
    data = [df[c.name].tolist() for c in cols]
    return [[cell(v, c) for v, c in zip(values, cols)] for values in zip(*data)]


def write_csv(df: pd.DataFrame, path, cols, header: bool = False) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows_text(df, cols)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow([c.name for c in cols])
        w.writerows(rows)
    return len(rows)


def read_csv(path, schema, cols=None) -> pd.DataFrame:
    """A headerless project CSV back into a typed frame (a missing cell: NaN or None). Read by the step
    library's strict reader: a wrong column count, number, category or range is an error naming the file,
    line, column and value, never a silently misread frame."""
    schema = as_schema(schema)
    cols = list(cols or schema.columns)
    _steplib_schema()  # steplib importable (see there)
    from steplib.csvio import read_table

    rows, _ = read_table(str(path), schema, cols, allow_missing=[c.name for c in cols], what="project data")
    df = pd.DataFrame(rows, columns=[c.name for c in cols], dtype=object)
    for c in cols:
        if not c.is_categorical:
            df[c.name] = df[c.name].astype(float)  # missing (None) -> NaN
    return df


def write_split(df: pd.DataFrame, schema, out_dir, *, training: bool) -> dict:
    """training-data.csv (all columns) or inference-data.csv + ground-truth.csv (row-aligned)."""
    schema = as_schema(schema)
    out_dir = Path(out_dir)
    if training:
        return {"training-data.csv": write_csv(df, out_dir / "training-data.csv", schema.columns)}
    return {"inference-data.csv": write_csv(df, out_dir / "inference-data.csv", schema.features),
            "ground-truth.csv": write_csv(df, out_dir / "ground-truth.csv", [schema.target_column])}
