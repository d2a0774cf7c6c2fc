"""The feature preprocessing shared by training and inference, and the checks around it.

Frames passed here hold the schema's columns plus ``_file`` and ``_line`` (where each row came from), so
every refusal names file, line, column and value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import InputError
from .schema import MISSING_CATEGORY, DatasetSchema

# Beyond this magnitude a value's square overflows float64, and so would the variance of its column.
MAX_MAGNITUDE = math.sqrt(np.finfo(float).max) / 1e3


def frame_of(rows: list[list], names: list[str], path: str, lines: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=names)
    frame["_file"], frame["_line"] = path, lines
    return frame


def where(frame: pd.DataFrame, index) -> str:
    return f"{frame.at[index, '_file']}: line {frame.at[index, '_line']}"


def shown(value) -> str:
    """A cell value for an error message: 1e+200, 'M' (numpy scalars as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def feature_frame(frame: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The features as the preprocessor takes them: numerics float (missing NaN), categoricals text with a
    missing value as the explicit MISSING_CATEGORY (imputed, never silently dropped)."""
    out = pd.DataFrame(index=frame.index)
    for col in schema.features:
        if col.is_categorical:
            out[col.name] = frame[col.name].astype(object).where(frame[col.name].notna(), MISSING_CATEGORY)
        else:
            out[col.name] = pd.to_numeric(frame[col.name], errors="raise").astype(float)
    return out


def build_preprocessor(schema: DatasetSchema):
    """Categoricals: one-hot over the schema's categories plus MISSING_CATEGORY (unknown categories are
    handled before, per the schema's unknown_category policy; 'ignore' leaves them all zeros). Numerics:
    median imputation, then standardization. Column order: categoricals, then numerics."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = []
    cats = schema.categorical_features
    if cats:
        steps.append(("categorical", OneHotEncoder(categories=[category_levels(schema, c) for c in cats],
                                                   handle_unknown="ignore", sparse_output=False),
                      [c.name for c in cats]))
    nums = [c.name for c in schema.numeric_features]
    if nums:
        steps.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def category_levels(schema: DatasetSchema, col) -> list[str]:
    """One-hot levels: the schema's categories, plus the missing category where missing values are imputed."""
    return [*col.categories, MISSING_CATEGORY] if schema.missing_features == "impute" else list(col.categories)


def transformed_sources(schema: DatasetSchema) -> list[str]:
    """The input column behind each transformed column (build_preprocessor's layout)."""
    sources = [c.name for c in schema.categorical_features for _ in category_levels(schema, c)]
    return sources + [c.name for c in schema.numeric_features]


def check_magnitudes(frame: pd.DataFrame, schema: DatasetSchema, columns=None) -> None:
    """Refuse a value whose square overflows: the standardization (mean, variance, or the scaled value)
    would turn inf/NaN, or collapse the column to one value."""
    for col in columns if columns is not None else schema.numeric_features:
        values = pd.to_numeric(frame[col.name]).to_numpy(dtype=float)
        too_big = np.flatnonzero(np.abs(np.nan_to_num(values)) > MAX_MAGNITUDE)
        if len(too_big):
            i = frame.index[too_big[0]]
            raise InputError(f"{where(frame, i)}: value {shown(frame.at[i, col.name])} in column '{col.name}' overflows "
                             f"the standardization (|value| must stay below {MAX_MAGNITUDE:.3g})")


def check_finite(frame: pd.DataFrame, transformed: np.ndarray, schema: DatasetSchema) -> None:
    """Every transformed value must be finite before it is written; else name the input row and column."""
    bad = np.argwhere(~np.isfinite(transformed))
    if len(bad):
        row, col = bad[0]
        name = transformed_sources(schema)[col]
        i = frame.index[row]
        raise InputError(f"{where(frame, i)}: value {shown(frame.at[i, name])} in column '{name}' overflows the "
                         f"fitted transform (transformed value {transformed[row, col]})")
