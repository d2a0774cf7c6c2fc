"""Baseline and check: profile the data in chunks (or merge the partial profiles of a sharded job),
then write Model Monitor's statistics.json, constraints.json and constraint_violations.json."""
from __future__ import annotations

import glob
import os
import tempfile

import pandas as pd

from .. import artifacts
from . import checks
from .constraints import Baseline, constraints_document, suggest_feature
from .profile import NUMERIC_TYPES, TypeProbe, new_profile, profile_from_dict
from ..csvio import is_number
from ..schema import canonical_label
from .source import (DataQualityError, dataset_header, list_csv_files, load_json, load_schema,
                     read_chunks, write_json)

PARTIAL_VERSION = 1


def canonical_labels(series: pd.Series) -> pd.Series:
    """Cells that are numbers in steplib.schema.canonical_label's spelling (4.0 -> "4"); other text unchanged."""
    numbers = pd.to_numeric(series, errors="coerce")
    found = numbers.notna()
    out = series.copy()
    out[found] = [canonical_label(v) for v in numbers[found]]
    return out


class DatasetProfile:
    """Profiles of every column of a data set; ``kinds`` maps each column to the type it is profiled as."""

    def __init__(self, columns: list[str], kinds: dict[str, str], inferred=(), categories=None):
        self.columns, self.kinds = list(columns), dict(kinds)
        self.inferred = sorted(inferred)  # columns whose type came from the data, not the schema
        self.categories = dict(categories or {})  # the schema's categories of String columns
        self.rows = 0
        self.files: list[str] = []
        self.profiles = {name: new_profile(kinds[name], seed=i) for i, name in enumerate(columns)}

    def read(self, path: str) -> "DatasetProfile":
        strings = [c for c in self.columns if self.kinds[c] not in NUMERIC_TYPES]
        # categories given as numbers: a cell is the category its value names ("1.0" of [1, 2] is "1"), as the
        # preprocessing reads it (steplib.schema.canonical_label)
        numeric_labels = [c for c, labels in self.categories.items()
                          if c in strings and labels and all(is_number(x) for x in labels)]
        for chunk in read_chunks(path, self.columns, strings):
            if chunk.index == 0:
                self.files.append(chunk.key)
            self.rows += len(chunk.frame)
            for name in self.columns:
                series = chunk.frame[name]
                self.profiles[name].update(chunk, canonical_labels(series) if name in numeric_labels else series)
        return self

    def merge(self, other: "DatasetProfile", where: str) -> None:
        if other.columns != self.columns:
            raise DataQualityError(f"partial result {where} has columns {other.columns}, expected {self.columns}")
        # Types and categories decide how the merged result is read and checked: partials that disagree were
        # read under different rules, and no merge order may pick one silently (the first used to win).
        if other.inferred != self.inferred or other.categories != self.categories:
            raise DataQualityError(
                f"partial result {where} was read with other column types than the partials before it (types "
                f"inferred for {other.inferred} vs {self.inferred}; categories of "
                f"{sorted(set(other.categories) ^ set(self.categories)) or 'the same columns, different values'}): "
                "every instance must read the same schema")
        for name in self.columns:
            mine, theirs = self.kinds[name], other.kinds[name]
            if mine == theirs:
                continue
            if name in self.inferred and {mine, theirs} <= set(NUMERIC_TYPES):
                # types read from the data: one shard's whole numbers are still numbers of the other's
                # Fractional column (Model Monitor's datatype check reads Integral values as Fractional)
                self.kinds[name] = "Fractional"
                continue
            raise DataQualityError(f"column {name} is read as {theirs} in partial result {where} but as {mine} in "
                                   "the partials before it: give the step a schema so every instance reads the same "
                                   "type")
        for name in self.columns:
            mine, theirs = self.profiles[name], other.profiles[name]
            if mine.kind != theirs.kind:
                raise DataQualityError(f"column {name} is profiled as {theirs.kind} in {where} but as {mine.kind} "
                                       "elsewhere: give the baseline a schema so every instance reads the same type")
            mine.merge(theirs)
        self.rows += other.rows
        self.files += other.files

    def entry(self, name: str, kind: str | None = None) -> dict:
        """Statistics entry of one column; ``kind`` overrides the inferred type (the baseline's declared type)."""
        profile = self.profiles[name]
        if profile.kind == "numeric":
            return {"name": name, "inferred_type": kind or profile.inferred_type(),
                    "numerical_statistics": profile.statistics()}
        return {"name": name, "inferred_type": kind or ("String" if profile.present else "Unknown"),
                "string_statistics": profile.statistics()}

    def to_dict(self) -> dict:
        return {"version": PARTIAL_VERSION, "columns": self.columns, "kinds": self.kinds, "inferred": self.inferred,
                "categories": self.categories, "rows": self.rows, "files": self.files,
                "profiles": {n: p.to_dict() for n, p in self.profiles.items()}}

    @classmethod
    def from_dict(cls, doc: dict) -> "DatasetProfile":
        out = cls(doc["columns"], doc["kinds"], doc["inferred"], doc["categories"])
        out.rows, out.files = int(doc["rows"]), list(doc["files"])
        out.profiles = {n: profile_from_dict(p) for n, p in doc["profiles"].items()}
        return out


def probe_types(path: str, columns: list[str], names: list[str]) -> dict[str, str]:
    """Types of the columns in ``names`` from the data: one extra pass over them, in chunks."""
    if not names:
        return {}
    probes = {n: TypeProbe() for n in names}
    for chunk in read_chunks(path, columns, string_columns=()):
        for n in names:
            probes[n].update(chunk, chunk.frame[n])
    return {n: p.inferred_type() for n, p in probes.items()}


def _require_rows(profile: DatasetProfile, path: str) -> None:
    if profile.rows == 0:
        files = list_csv_files(path)
        where = files[0] if len(files) == 1 else f"{path} ({len(files)} files)"
        raise DataQualityError(f"input {where} has a header row but no data rows")


# --------------------------------------------------------------------------- partial results (sharding)

def has_input_files(path: str) -> bool:
    return os.path.isfile(path) or (os.path.isdir(path) and any(
        not n.startswith(".") for _, _, names in os.walk(path) for n in names))


def write_empty_partial(output_dir: str, host: str) -> str:
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"partial-{host}.json")
    write_json(path, {"version": PARTIAL_VERSION, "empty": True})
    print(f"no input files on {host} (its shard is empty) -> {path}")
    return path


def write_partial(profile: DatasetProfile, output_dir: str, host: str) -> str:
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"partial-{host}.json")
    write_json(path, profile.to_dict())
    print(f"partial profile of {profile.rows} rows ({len(profile.files)} file(s)) -> {path}")
    return path


def merge_partials(partials_dir: str) -> DatasetProfile:
    files = sorted(glob.glob(os.path.join(partials_dir, "**", "partial-*.json"), recursive=True))
    if not files:
        raise DataQualityError(f"no partial results (partial-*.json) under {partials_dir}")
    merged = None
    for f in files:
        doc = load_json(f, "partial result")
        if not isinstance(doc, dict) or doc.get("version") != PARTIAL_VERSION:
            raise DataQualityError(f"partial result {f} is not a version {PARTIAL_VERSION} data-quality profile")
        if doc.get("empty"):
            continue
        part = DatasetProfile.from_dict(doc)
        if merged is None:
            merged = DatasetProfile(part.columns, part.kinds, part.inferred, part.categories)
        merged.merge(part, f)
    if merged is None or merged.rows == 0:
        raise DataQualityError(f"the partial results under {partials_dir} hold no data rows ({len(files)} partials)")
    dupes = sorted({k for k in merged.files if merged.files.count(k) > 1})
    if dupes:
        raise DataQualityError(f"partial results under {partials_dir} profile the same file twice: {dupes[:5]} "
                               "(shard the input with ShardedByS3Key)")
    return merged


# --------------------------------------------------------------------------- baseline

def baseline_profile(input_path: str, schema_path: str | None, schema_required: bool,
                     require_rows: bool = True) -> DatasetProfile:
    schema = None
    if schema_path and os.path.exists(schema_path):
        schema = load_schema(schema_path)
    elif schema_required:
        raise DataQualityError(f"schema file {schema_path} does not exist")
    else:
        print(f"no schema at {schema_path}: inferring column types from the data")
    columns = dataset_header(list_csv_files(input_path))
    declared = {}
    if schema:
        missing = [c["name"] for c in schema if c["name"] not in columns]
        if missing:
            raise DataQualityError(f"baseline input {input_path} lacks schema columns {missing} (header: {columns})")
        declared = {c["name"]: c["type"] for c in schema}
        extra = [c for c in columns if c not in declared]
        if extra:
            print(f"WARNING: columns {extra} of {input_path} are not in the schema; types inferred from data")
    kinds = dict(declared)
    kinds.update(probe_types(input_path, columns, [c for c in columns if c not in declared]))
    for name in columns:
        if kinds[name] == "Unknown":
            raise DataQualityError(f"column {name} of baseline input {input_path} has no values "
                                   f"(all rows are empty)")
    categories = {c["name"]: c["categories"] for c in schema or [] if c.get("categories")}
    profile = DatasetProfile(columns, {c: kinds[c] for c in columns}, [c for c in columns if c not in declared],
                             categories).read(input_path)
    if require_rows:  # a shard may hold a header-only file; the merge checks the total
        _require_rows(profile, input_path)
    return profile


def finish_baseline(profile: DatasetProfile, where: str, output_dir: str, drift: dict | None = None,
                    sign_constraints: bool = True):
    """statistics.json + constraints.json of a profile. ``sign_constraints=False`` suggests no
    is_non_negative: for a model's outputs, which have no sign contract (a shift shows as drift instead)."""
    entries, features = [], []
    for name in profile.columns:
        p = profile.profiles[name]
        kind = profile.kinds[name]
        if kind in NUMERIC_TYPES and name in profile.inferred:
            kind = p.inferred_type()  # Integral unless a value has a fraction, over all shards
        feature = suggest_feature(name, kind, p, profile.categories.get(name), profile.rows, where)
        if not sign_constraints and "num_constraints" in feature:
            feature["num_constraints"]["is_non_negative"] = False
        features.append(feature)
        entries.append(profile.entry(name, kind))
    statistics = {"version": 0.0, "dataset": {"item_count": profile.rows}, "features": entries}
    constraints = constraints_document(features, drift)
    os.makedirs(output_dir, exist_ok=True)
    write_json(os.path.join(output_dir, "statistics.json"), statistics)
    write_json(os.path.join(output_dir, "constraints.json"), constraints)
    print(f"baseline: {profile.rows} rows, {len(entries)} features -> {output_dir}")
    return statistics, constraints


def run_values_baseline(name: str, values, output_dir: str, drift: dict | None = None, where: str = "") -> tuple:
    """The baseline of one numeric column given as values (a model's predictions), through the same profile
    and files as a data set's baseline, so the check step compares a batch's predictions with it unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.csv")
        with open(path, "w") as f:
            f.write(name + "\n" + "".join(f"{float(v)!r}\n" for v in values))
        profile = DatasetProfile([name], {name: "Fractional"}).read(path)
        _require_rows(profile, where or path)
        return finish_baseline(profile, where or path, output_dir, drift, sign_constraints=False)


def run_baseline(input_path: str, schema_path: str | None, schema_required: bool, output_dir: str):
    profile = baseline_profile(input_path, schema_path, schema_required)
    return finish_baseline(profile, input_path, output_dir)


# --------------------------------------------------------------------------- check

def load_baseline(statistics_path: str, constraints_path: str) -> Baseline:
    return Baseline(load_json(statistics_path, "baseline statistics"),
                    load_json(constraints_path, "baseline constraints"), statistics_path, constraints_path)


def check_profile(input_path: str, baseline: Baseline, require_rows: bool = True) -> DatasetProfile:
    columns = dataset_header(list_csv_files(input_path))
    expected = baseline.columns()
    if expected and not set(columns) & set(expected):
        raise DataQualityError(f"header of input {input_path} {columns[:12]} matches none of the baseline "
                               f"columns {expected[:12]}: is the header row missing?")
    kinds = {c: baseline.type_of(c) for c in columns}
    kinds.update(probe_types(input_path, columns, [c for c in columns if kinds[c] == "Unknown"]))
    kinds = {c: (k if k in NUMERIC_TYPES else "String") for c, k in kinds.items()}
    probed = [c for c in columns if baseline.type_of(c) == "Unknown"]
    profile = DatasetProfile(columns, kinds, inferred=probed).read(input_path)
    if require_rows:
        _require_rows(profile, input_path)
    return profile


def finish_check(profile: DatasetProfile, baseline: Baseline, output_dir: str) -> dict:
    violations = checks.missing_column_check(baseline, profile.columns)
    violations += checks.extra_column_check(baseline, profile.columns)
    entries = []
    for name in profile.columns:
        entry = profile.entry(name)
        entries.append(entry)
        violations += checks.feature_checks(name, profile.kinds[name], profile.profiles[name], entry, baseline)
    statistics = {"version": 0.0, "dataset": {"item_count": profile.rows}, "features": entries}
    mm_violations = {"violations": [{k: v[k] for k in ("feature_name", "constraint_check_type", "description")}
                                    for v in violations]}
    summary = {"violation_count": len(violations), "violations": violations, "row_count": profile.rows}
    os.makedirs(output_dir, exist_ok=True)
    write_json(artifacts.path("data_quality_statistics", output_dir), statistics)
    write_json(artifacts.path("data_quality_violations", output_dir), mm_violations)
    artifacts.write("data_quality_summary", output_dir, summary)  # what the report and the digest read
    print(f"check: {profile.rows} rows, {len(violations)} violation(s) -> {output_dir}")
    for v in violations:
        print(f"  {v['feature_name']}: {v['constraint_check_type']}: {v['description']}")
    return summary


def run_check(input_path: str, statistics_path: str, constraints_path: str, output_dir: str) -> dict:
    baseline = load_baseline(statistics_path, constraints_path)
    return finish_check(check_profile(input_path, baseline), baseline, output_dir)
