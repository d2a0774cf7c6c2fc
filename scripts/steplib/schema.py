"""The data set schema (scripts/dataset_schema.json): validated once, read through typed objects.

Every consumer reads it here: the step scripts, the data-quality engine, the import tool, the demo data
generator and the tests. The file is validated against ``dataset_schema.schema.json`` (beside this module,
so it ships to every job with the step library), then checked for what a JSON Schema cannot say (the
target is a column, names are unique, a numeric range is not empty, labels do not collide).

How the schema reaches the jobs -- one route each, so one run can never see two schemas:
  * training pipelines: ``pipeline_scripts`` validates it at upsert and uploads it (content-addressed)
    as the jobs' ``schema`` input; the training preprocessing then packs the copy it used next to the fitted
    preprocessor, and the training job puts both into model.tar.gz.
  * inference pipeline: every job reads the schema from the approved model's model.tar.gz, never from
    the bucket. The preprocessor inside that archive was fitted with exactly that schema; a schema edited
    after training (new column, renamed category) must not silently change how an older model's inputs
    are read. A schema change therefore takes effect with the next trained and approved model.

Category labels may be strings or numbers (``[3, 4, 5, 6, 8]``); numeric labels match their value in a CSV
cell (``4`` and ``4.0`` are the same category) and are kept as canonical strings (``"4"``) in data frames.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

SCHEMA_OF_SCHEMA = "dataset_schema.schema.json"  # package data beside this module (also read from the jobs' zip)

DEFAULT_MISSING_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?")
UNKNOWN_CATEGORY_POLICIES = ("error", "ignore", "most_frequent")
NUMERIC_TYPES = {"float": "float", "double": "float", "int": "int", "integer": "int"}
MISSING_CATEGORY = "__missing__"  # the category imputed for a missing categorical value


class SchemaError(InputError):
    """The schema file is missing, unreadable or invalid; the message names the file and the key."""


def canonical_label(label: Any) -> str:
    """A category label as the string data frames hold: 4 and 4.0 -> '4', 'M' -> 'M'."""
    if isinstance(label, bool):
        raise TypeError("a boolean is not a category label")
    if isinstance(label, (int, float)):
        return str(int(label)) if float(label).is_integer() else repr(float(label))
    return str(label)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "float" | "int" | "categorical" (aliases double/integer normalised)
    categories: tuple[str, ...] = ()  # canonical labels, schema order
    numeric_labels: bool = False  # categories were given as numbers
    min: float | None = None
    max: float | None = None
    unknown_category: str = "error"

    @property
    def is_categorical(self) -> bool:
        return self.type == "categorical"

    @property
    def is_numeric(self) -> bool:
        return not self.is_categorical

    def category(self, text: str) -> str | None:
        """The canonical label a (stripped, non-missing) cell text names, or None when it names none."""
        if not self.numeric_labels:
            return text if text in self.categories else None
        try:
            label = canonical_label(float(text))
        except ValueError:
            return None
        return label if label in self.categories else None

    def range_text(self) -> str:
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        return f"[{low}, {high}]"

    def in_range(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    columns: tuple[Column, ...]
    target: str
    description: str = ""
    missing_tokens: frozenset[str] = frozenset(DEFAULT_MISSING_TOKENS)
    missing_features: str = "impute"  # "impute" | "error"
    source: str = "dataset_schema.json"
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    # --- views -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def target_column(self) -> Column:
        return self.column(self.target)

    @property
    def target_index(self) -> int:
        return self.names.index(self.target)

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.name != self.target]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def numeric_features(self) -> list[Column]:
        return [c for c in self.features if c.is_numeric]

    @property
    def categorical_features(self) -> list[Column]:
        return [c for c in self.features if c.is_categorical]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def is_missing(self, text: str) -> bool:
        return text.strip() in self.missing_tokens

    def to_json(self) -> str:
        """The schema as the file said it (what jobs copy along with the model)."""
        return json.dumps(self.raw, indent=2) + "\n"


# --- loading -------------------------------------------------------------------------------------

def _schema_of_schema() -> dict:
    from importlib.resources import files

    return json.loads(files(__package__).joinpath(SCHEMA_OF_SCHEMA).read_text(encoding="utf-8"))


def _validate_json(data: Any, source: str) -> None:
    try:
        import jsonschema
    except ImportError:
        # The stock SageMaker scikit-learn image may not carry jsonschema. Every schema a job reads was
        # validated with it at upsert (pipeline_scripts) and in the offline runtime; the semantic checks in
        # from_dict() still run, and they refuse anything from_dict() cannot read.
        return
    validator = jsonschema.Draft202012Validator(_schema_of_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        details = "; ".join(_describe(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise SchemaError(f"{source}: invalid data set schema: {details}{more}")


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"at '{where}': {error.message}"


def from_dict(data: Any, source: str = "dataset_schema.json") -> DatasetSchema:
    """Validate ``data`` (a parsed schema file) and return the typed schema."""
    _validate_json(data, source)
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or not data["columns"]:
        raise SchemaError(f"{source}: a schema is an object with a non-empty 'columns' list and a 'target'")
    columns, seen = [], set()
    default_policy = data.get("unknown_category", "error")
    for i, raw in enumerate(data["columns"]):
        where = f"{source}: columns[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise SchemaError(f"{where}: needs a 'name'")
        name, kind = raw["name"], raw.get("type")
        if name in seen:
            raise SchemaError(f"{where}: duplicate column name '{name}'")
        seen.add(name)
        if kind == "categorical":
            labels = raw.get("categories")
            if not isinstance(labels, list) or not labels:
                raise SchemaError(f"{where} ('{name}'): a categorical column lists its 'categories'")
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels)
            if not numeric and not all(isinstance(v, str) for v in labels):
                raise SchemaError(f"{where} ('{name}'): categories are all strings or all numbers, got {labels}")
            canon = [canonical_label(v) for v in labels]
            if len(set(canon)) != len(canon) or MISSING_CATEGORY in canon:
                raise SchemaError(f"{where} ('{name}'): categories must be distinct (and not {MISSING_CATEGORY!r})")
            policy = raw.get("unknown_category", default_policy)
            if policy not in UNKNOWN_CATEGORY_POLICIES:
                raise SchemaError(f"{where} ('{name}'): unknown_category {policy!r}: "
                                  f"use one of {', '.join(UNKNOWN_CATEGORY_POLICIES)}")
            columns.append(Column(name, "categorical", tuple(canon), numeric, unknown_category=policy))
        elif kind in NUMERIC_TYPES:
            low, high = raw.get("min"), raw.get("max")
            for key, value in (("min", low), ("max", high)):
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value)):
                    raise SchemaError(f"{where} ('{name}'): '{key}' must be a finite number, got {value!r}")
            if low is not None and high is not None and low > high:
                raise SchemaError(f"{where} ('{name}'): min {low} is above max {high}")
            columns.append(Column(name, NUMERIC_TYPES[kind], min=None if low is None else float(low),
                                  max=None if high is None else float(high)))
        else:
            raise SchemaError(f"{where} ('{name}'): type {kind!r}: use categorical, float or int")
    target = data.get("target")
    if target not in seen:
        raise SchemaError(f"{source}: target {target!r} is not one of the columns ({', '.join(c.name for c in columns)})")
    if len(columns) < 2:
        raise SchemaError(f"{source}: needs the target and at least one feature column")
    target_col = next(c for c in columns if c.name == target)
    if target_col.is_categorical:
        raise SchemaError(f"{source}: target '{target}' is categorical; this template trains regressors "
                          "(declare it float or int)")
    missing = data.get("missing_values") or {}
    tokens = missing.get("tokens", list(DEFAULT_MISSING_TOKENS))
    policy = missing.get("features", "impute")
    if policy not in ("impute", "error"):
        raise SchemaError(f"{source}: missing_values.features {policy!r}: use impute or error")
    for c in columns:  # a label that reads as "missing" could never be seen as itself
        clash = [v for v in c.categories if v in tokens]
        if clash:
            raise SchemaError(f"{source}: column '{c.name}': categories {clash} are also missing-value tokens")
    return DatasetSchema(name=str(data.get("name", "dataset")), columns=tuple(columns), target=target,
                         description=str(data.get("description", "")),
                         missing_tokens=frozenset(t.strip() for t in tokens), missing_features=policy,
                         source=source, raw=data)


def load_schema(path: str) -> DatasetSchema:
    """Read and validate a schema file; every problem is a SchemaError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SchemaError(f"{path}: schema file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read the schema ({exc})") from None
    return from_dict(data, path)
