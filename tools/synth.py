"""Seeded, schema-driven data for tests, the demo and benchmarks: any data set the schema describes.

    generate(schema, n, seed)                 rows in schema order: numeric columns, categoricals (numbers or
                                              text), the target as a learnable function of the features + noise
    generate(..., missing=0.05)               that share of feature cells left empty
    generate(..., drift=True)                 the drifted population (see `apply_drift`)
    apply_drift(frame, schema, reference=...) the same deterministic, learnable shift applied to any rows,
                                              real ones included (the demo's drifted batches)

The drift: the first numeric feature moves past its whole reference range (a covariate shift data-quality
checks flag) and, in those rows, the target moves 1.5 standard deviations (a concept shift that breaks a
model trained before it). Because the moved feature marks the drifted rows, a model retrained on labelled
drifted rows learns the shift back. Shifts go the way the schema's min/max leave room for.

Values are typed in the frame (float with NaN for numeric columns, the category's text or None for
categoricals); `write_csv` writes the project's convention: headerless, schema order, empty cell = missing.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

CONCEPT_SEED = 20240611  # one target function for every seed: training and scored batches share it
MARKER_GAP_SD = 1.0
TARGET_SHIFT_SD = 1.5


# ---------------------------------------------------------------- schema access (plain dict, as in the JSON)
def load_schema(path) -> dict:
    return json.loads(Path(path).read_text())


def columns(schema: dict) -> list[dict]:
    return list(schema["columns"])


def column(schema: dict, name: str) -> dict:
    return next(c for c in schema["columns"] if c["name"] == name)


def feature_columns(schema: dict) -> list[dict]:
    return [c for c in schema["columns"] if c["name"] != schema["target"]]


def is_categorical(col: dict) -> bool:
    return col["type"] == "categorical"


def is_integer(col: dict) -> bool:
    return col["type"] in ("int", "integer")


def category_text(value) -> str:
    """How a category is spelled in the CSVs: the schema's text, or a number without a needless '.0'."""
    if isinstance(value, bool):
        raise TypeError(f"a category cannot be a boolean ({value!r})")
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def categories(col: dict) -> list[str]:
    return [category_text(v) for v in col["categories"]]


# ---------------------------------------------------------------- generator
def _location_scale(col: dict) -> tuple[float, float]:
    lo, hi = col.get("min"), col.get("max")
    if lo is not None and hi is not None:
        return (lo + hi) / 2.0, (hi - lo) / 8.0
    if lo is not None:
        return lo + 4.0, 1.0
    if hi is not None:
        return hi - 4.0, 1.0
    return 0.0, 1.0


class _Concept:
    """The hidden target function, fixed by the schema's columns (not by the batch's seed)."""

    def __init__(self, schema: dict):
        rng = np.random.default_rng(CONCEPT_SEED)
        feats = feature_columns(schema)
        self.numeric = [c["name"] for c in feats if not is_categorical(c)]
        self.categorical = [c["name"] for c in feats if is_categorical(c)]
        self.weights = rng.uniform(0.5, 1.5, len(self.numeric)) * rng.choice([-1.0, 1.0], len(self.numeric))
        self.cat_probs = {c["name"]: rng.dirichlet(np.full(len(c["categories"]), 4.0)) for c in feats
                          if is_categorical(c)}
        self.cat_effects = {c["name"]: rng.normal(0.0, 0.8, len(c["categories"])) for c in feats
                            if is_categorical(c)}
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


def target_scale(schema: dict, target_sd: float | None, target_mean: float | None) -> tuple[float, float]:
    col = column(schema, schema["target"])
    loc, scale = _location_scale(col)
    if col.get("min") is None and col.get("max") is None:
        loc, scale = 10.0, 3.0
    return (loc if target_mean is None else target_mean), (scale if target_sd is None else target_sd)


def generate(schema: dict, n: int, seed: int, *, drift: bool = False, missing: float = 0.0,
             missing_target: float = 0.0, target_sd: float | None = None, noise_sd: float | None = None,
             target_mean: float | None = None) -> pd.DataFrame:
    """n rows in schema order. target_sd/noise_sd set the target's spread and its irreducible noise
    (default: from the target's min/max, else 3 and 1); `scales_for_threshold` picks them for an MSE threshold."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    concept = _Concept(schema)
    frame = {}
    z = rng.normal(size=(n, len(concept.numeric)))
    codes = {}
    for j, name in enumerate(concept.numeric):
        col = column(schema, name)
        loc, scale = _location_scale(col)
        values = loc + scale * z[:, j]
        frame[name] = _fit_column(values, col)
    for name in concept.categorical:
        col = column(schema, name)
        probs = concept.cat_probs[name][::-1] if drift else concept.cat_probs[name]  # drift: another mix
        codes[name] = rng.choice(len(probs), n, p=probs)
        frame[name] = np.array(categories(col), dtype=object)[codes[name]]
    mean, sd = target_scale(schema, target_sd, target_mean)
    noise = (sd / 3.0) if noise_sd is None else noise_sd
    signal_sd = math.sqrt(max(sd ** 2 - noise ** 2, 0.0))
    y = mean + signal_sd * concept.signal(z, codes) + noise * rng.normal(size=n)
    frame[schema["target"]] = _fit_column(y, column(schema, schema["target"]))
    df = pd.DataFrame({c["name"]: frame[c["name"]] for c in schema["columns"]})
    if drift:
        marker = marker_column(schema)
        step = None
        if marker is not None:  # 8 scales: past any normal sample (|z| > 4 is rarer than 1 in 15,000)
            loc, scale = _location_scale(marker)
            step = _shift(marker, loc + 4 * scale, 8 * scale, loc - 4 * scale)
        df = apply_drift(df, schema, target_sd=sd, marker_step=step)
    return with_missing(df, schema, missing, missing_target, rng)


def _fit_column(values: np.ndarray, col: dict) -> np.ndarray:
    lo, hi = col.get("min"), col.get("max")
    values = np.clip(values, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return np.rint(values) if is_integer(col) else values


def with_missing(df: pd.DataFrame, schema: dict, share: float, target_share: float,
                 rng: np.random.Generator) -> pd.DataFrame:
    df = df.copy()
    for col in schema["columns"]:
        p = target_share if col["name"] == schema["target"] else share
        if p <= 0:
            continue
        mask = rng.random(len(df)) < p
        df[col["name"]] = df[col["name"]].astype(object if is_categorical(col) else float)
        df.loc[mask, col["name"]] = None if is_categorical(col) else np.nan
    return df


def scales_for_threshold(threshold: float) -> dict:
    """Target spread and noise for an MSE threshold: a fitted model lands well under it (noise variance is
    an eighth of it), a model that misses the drift lands far over it."""
    root = math.sqrt(threshold)
    return {"target_sd": 1.3 * root, "noise_sd": 0.35 * root}


# ---------------------------------------------------------------- drift (synthetic or real rows)
def marker_column(schema: dict) -> dict | None:
    return next((c for c in feature_columns(schema) if not is_categorical(c)), None)


def _shift(col: dict, top: float, amount: float, bottom: float | None = None) -> float:
    """+amount, or -amount when the schema's max leaves no room above `top` and its min leaves room below
    `bottom` (default: top)."""
    hi, lo = col.get("max"), col.get("min")
    bottom = top if bottom is None else bottom
    if hi is not None and top + amount > hi and (lo is None or bottom - amount >= lo):
        return -amount
    return amount


def apply_drift(df: pd.DataFrame, schema: dict, reference: pd.DataFrame | None = None,
                target_sd: float | None = None, marker_step: float | None = None) -> pd.DataFrame:
    """Rows of the drifted population: the marker feature moved by its reference range + MARKER_GAP_SD standard
    deviations, the target by TARGET_SHIFT_SD standard deviations (reference: `reference`, default the rows)."""
    ref = df if reference is None else reference
    out = df.copy()
    marker = marker_column(schema)
    if marker is not None:
        values = pd.to_numeric(ref[marker["name"]], errors="coerce")
        # past the whole reference range plus a gap: drifted rows never overlap the old ones, so the shift is
        # learnable from labelled drifted rows (a shift of a few sd leaves an overlap no model can separate)
        width = float(values.max() - values.min()) + MARKER_GAP_SD * (float(values.std()) or 1.0)
        step = marker_step if marker_step is not None else \
            _shift(marker, float(values.max() if width > 0 else values.mean()), width, float(values.min()))
        out[marker["name"]] = _fit_column(pd.to_numeric(out[marker["name"]]).to_numpy(float) + step, marker)
    target = column(schema, schema["target"])
    y_ref = pd.to_numeric(ref[target["name"]], errors="coerce")
    sd_y = target_sd if target_sd is not None else (float(y_ref.std()) or 1.0)
    step = _shift(target, float(y_ref.mean()), TARGET_SHIFT_SD * sd_y)
    out[target["name"]] = _fit_column(pd.to_numeric(out[target["name"]]).to_numpy(float) + step, target)
    return out


# ---------------------------------------------------------------- CSV in the project's convention
def cell(value, col: dict) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if is_categorical(col):
        return category_text(value)
    if is_integer(col) or float(value).is_integer():
        return str(int(value))
    return f"{float(value):.6g}"


def rows_text(df: pd.DataFrame, cols: list[dict]) -> list[list[str]]:
    data = [df[c["name"]].tolist() for c in cols]
    return [[cell(v, c) for v, c in zip(values, cols)] for values in zip(*data)]


def write_csv(df: pd.DataFrame, path, cols: list[dict], header: bool = False) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows_text(df, cols)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow([c["name"] for c in cols])
        w.writerows(rows)
    return len(rows)


def read_csv(path, schema: dict, cols: list[dict] | None = None) -> pd.DataFrame:
    """A headerless project CSV back into a typed frame (empty cell = missing)."""
    cols = cols or schema["columns"]
    df = pd.read_csv(path, header=None, names=[c["name"] for c in cols], dtype=str, keep_default_na=False)
    for c in cols:
        s = df[c["name"]].str.strip()
        if is_categorical(c):
            df[c["name"]] = s.where(s != "", None)
        else:
            df[c["name"]] = pd.to_numeric(s.where(s != "", None), errors="raise")
    return df


def write_split(df: pd.DataFrame, schema: dict, out_dir, *, training: bool) -> dict:
    """training-data.csv (all columns) or inference-data.csv + ground-truth.csv (row-aligned)."""
    out_dir = Path(out_dir)
    if training:
        return {"training-data.csv": write_csv(df, out_dir / "training-data.csv", schema["columns"])}
    target = [column(schema, schema["target"])]
    return {"inference-data.csv": write_csv(df, out_dir / "inference-data.csv", feature_columns(schema)),
            "ground-truth.csv": write_csv(df, out_dir / "ground-truth.csv", target)}
