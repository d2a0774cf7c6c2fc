"""Data-quality engine: baseline + check in Model Monitor's file formats.

Runs as a SageMaker processing step in the stock scikit-learn container (numpy, pandas,
scipy, stdlib) and in the offline runtime. Self-contained single file.

    python data_quality.py baseline --input DIR_OR_FILE --schema FILE --output DIR
        -> statistics.json, constraints.json
    python data_quality.py check --input DIR_OR_FILE --baseline-statistics FILE
        --baseline-constraints FILE --output DIR
        -> statistics.json, constraint_violations.json, summary.json

File formats follow SageMaker Model Monitor's documented schemas (statistics.json,
constraints.json, constraint_violations.json); statistics/constraints written by Model
Monitor itself are accepted as baselines (KLL sketch: data[level] items weigh 2**level).

Semantics of the monitoring_config knobs (Model Monitor's own):
- datatype_check_threshold: required fraction of non-null values that match the baseline
  type (1.0 = all must match). Integral values match a Fractional column.
- domain_content_threshold: required fraction of non-null String values inside
  string_constraints.domains.
- completeness: minimum non-null fraction per feature.
- num_constraints.is_non_negative: no value below zero (reported as data_type_check).
- distribution_constraints: numeric drift = L-infinity distance between the two CDFs
  (comparison_threshold, comparison_method Robust|Simple); categorical drift =
  LInfinity distance between category frequencies or ChiSquared test
  (categorical_comparison_threshold). See drift_distance() for the Robust correction.
- evaluate_constraints / perform_comparison "Disabled" (or false) switch checks off;
  per-feature "monitoringConfigOverrides" (or "monitoring_config_overrides") win over
  the global monitoring_config.

Exit codes: 0 done (violations do not fail a check), 1 bad/unreadable input (the reason is
written to /opt/ml/output/message), 2 internal error.
"""
import argparse
import csv
import glob
import json
import math
import os
import sys

import numpy as np
import pandas as pd
from steplib import container_path

KLL_K = 2048  # items kept on the top sketch level (Model Monitor's sketches use k=2048)
KLL_C = 0.64
NUM_BUCKETS = 10  # Model Monitor materialises distributions in 10 buckets
MAX_DOMAIN = 100  # string features with more distinct values get no domain constraint
MAX_CATEGORICAL_BUCKETS = 1000
ROBUST_C = 1.8  # KS critical coefficient c(alpha) ~ alpha 0.003 (Deequ/Model Monitor)

DEFAULT_MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}
SCHEMA_TYPES = {"categorical": "String", "string": "String", "float": "Fractional",
                "double": "Fractional", "int": "Integral", "integer": "Integral"}
NUMERIC_TYPES = ("Integral", "Fractional")




class DataQualityError(Exception):
    """Bad or unreadable input; the message names the file and the problem."""


# --------------------------------------------------------------------------- input

def list_csv_files(path):
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                       if os.path.isfile(f) and not os.path.basename(f).startswith("."))
        if not files:
            raise DataQualityError(f"input directory {path} contains no files")
        return files
    if not os.path.exists(path):
        raise DataQualityError(f"input {path} does not exist")
    return [path]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_header(path):
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
    if sum(_is_number(n) for n in names) > len(names) / 2:
        raise DataQualityError(f"first line of input file {path} looks like data, not a header row "
                               f"({names[:6]}...): is the header row missing?")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataQualityError(f"input file {path} has duplicate column names: {dupes}")
    if any(not n for n in names):
        raise DataQualityError(f"input file {path} has an empty column name in its header")
    return names


def read_input(path, string_columns=()):
    """Read one CSV file or every file of a directory (same header each) into a DataFrame."""
    frames, columns, first = [], None, None
    for f in list_csv_files(path):
        names = read_header(f)
        if columns is None:
            columns, first = names, f
        elif names != columns:
            raise DataQualityError(f"input file {f} has header {names}, but {first} has {columns}")
        dtype = {c: str for c in names if c in set(string_columns)}
        try:
            df = pd.read_csv(f, dtype=dtype, skipinitialspace=True)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataQualityError(f"cannot parse input file {f}: {str(exc).strip()}") from None
        df.columns = names
        frames.append(df)
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        where = first if len(frames) == 1 else f"{path} ({len(frames)} files)"
        raise DataQualityError(f"input {where} has a header row but no data rows")
    return df


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataQualityError(f"{what} file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataQualityError(f"{what} file {path} is not valid JSON: {exc}") from None


def load_schema(path):
    schema = load_json(path, "schema")
    cols = schema.get("columns") if isinstance(schema, dict) else None
    if not isinstance(cols, list) or not cols:
        raise DataQualityError(f"schema file {path} has no 'columns' list")
    out = []
    for c in cols:
        if not isinstance(c, dict) or "name" not in c:
            raise DataQualityError(f"schema file {path}: every column needs a 'name': {c!r}")
        t = str(c.get("type", "")).lower()
        if t not in SCHEMA_TYPES:
            raise DataQualityError(f"schema file {path}: column {c['name']} has unknown type {c.get('type')!r}"
                                   f" (known: {sorted(SCHEMA_TYPES)})")
        out.append({"name": c["name"], "type": SCHEMA_TYPES[t], "categories": c.get("categories")})
    return out


# --------------------------------------------------------------------------- profiling

def to_numeric(series):
    """(finite float array with NaN for non-numeric, mask non-null, mask numeric)."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(str)
    if pd.api.types.is_numeric_dtype(series):
        vals = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(vals)
    else:
        present = series.notna().to_numpy()
        vals = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    vals = np.where(np.isfinite(vals), vals, np.nan)  # inf is not a usable number
    numeric = ~np.isnan(vals)
    return vals, present, numeric


def kll_sketch(sorted_vals):
    """Deterministic KLL-shaped summary of sorted values, Model Monitor's layout.

    data[level] items each stand for 2**level values. The top level keeps the middle item of
    each block of 2**h sorted values (what full compactions produce); the remainder is split
    by its binary digits so the weights add up to exactly n. Rank error <= 2**(h-1) / n.
    """
    n = len(sorted_vals)
    if n <= KLL_K:
        return {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": [sorted_vals.tolist()]}
    h = int(math.ceil(math.log2(n / KLL_K)))
    step = 1 << h
    q = n // step
    levels = [[] for _ in range(h + 1)]
    levels[h] = sorted_vals[step // 2: q * step: step].tolist()
    pos, r = q * step, n - q * step
    for j in range(h - 1, -1, -1):
        if r & (1 << j):
            levels[j].append(float(sorted_vals[pos + (1 << j) // 2]))
            pos += 1 << j
    return {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": levels}


def equal_width_buckets(sorted_vals):
    lo, hi = float(sorted_vals[0]), float(sorted_vals[-1])
    if lo == hi:
        return [{"lower_bound": lo, "upper_bound": hi, "count": float(len(sorted_vals))}]
    edges = np.linspace(lo, hi, NUM_BUCKETS + 1)
    idx = np.searchsorted(sorted_vals, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], idx, [len(sorted_vals)])))
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
            for i in range(NUM_BUCKETS)]


def numerical_statistics(vals, n_present, n_missing):
    valid = vals[~np.isnan(vals)]
    stats = {"common": {"num_present": int(n_present), "num_missing": int(n_missing)}}
    if valid.size == 0:
        return stats
    valid.sort()
    total = float(valid.sum())
    mean = total / valid.size
    stats.update({
        "mean": mean, "sum": total, "std_dev": float(np.sqrt(np.mean((valid - mean) ** 2))),
        "min": float(valid[0]), "max": float(valid[-1]),
        "distribution": {"kll": {"buckets": equal_width_buckets(valid), "sketch": kll_sketch(valid)}},
    })
    return stats


def string_statistics(series, n_present, n_missing):
    counts = series.dropna().astype(str).value_counts(sort=True)
    buckets = [{"value": str(v), "count": int(c)} for v, c in counts.iloc[:MAX_CATEGORICAL_BUCKETS].items()]
    return {"common": {"num_present": int(n_present), "num_missing": int(n_missing)},
            "distinct_count": float(len(counts)),
            "distribution": {"categorical": {"buckets": buckets}}}


def infer_type(vals, present, numeric):
    """Model Monitor types: Integral, Fractional, String, Unknown (no values)."""
    if not present.any():
        return "Unknown"
    if (present & ~numeric).any():
        return "String"
    v = vals[numeric]
    return "Integral" if np.all(v == np.floor(v)) else "Fractional"


def profile_column(name, series, kind):
    """Statistics entry of one column; kind is the type the statistics are computed as."""
    n = len(series)
    if kind in NUMERIC_TYPES:
        vals, present, numeric = to_numeric(series)
        n_present = int(present.sum())
        # type of the parseable values (text is reported by data_type_check, not here)
        entry = {"name": name, "inferred_type": infer_type(vals, numeric, numeric),
                 "numerical_statistics": numerical_statistics(vals, n_present, n - n_present)}
        return entry, {"vals": vals, "present": present, "numeric": numeric}
    present = series.notna().to_numpy()
    n_present = int(present.sum())
    inferred = "String" if n_present else "Unknown"
    entry = {"name": name, "inferred_type": inferred,
             "string_statistics": string_statistics(series, n_present, n - n_present)}
    return entry, {"present": present}


def statistics_document(df, entries):
    return {"version": 0.0, "dataset": {"item_count": int(len(df))}, "features": entries}


# --------------------------------------------------------------------------- baseline

def _examples(series, mask, limit=3):
    idx = np.flatnonzero(mask)[:limit]
    return ", ".join(f"{series.iloc[i]!r} (data row {i + 1})" for i in idx)


def run_baseline(input_path, schema_path, schema_required, output_dir):
    schema = None
    if schema_path and os.path.exists(schema_path):
        schema = load_schema(schema_path)
    elif schema_required:
        raise DataQualityError(f"schema file {schema_path} does not exist")
    else:
        print(f"no schema at {schema_path}: inferring column types from the data")
    string_cols = [c["name"] for c in schema if c["type"] == "String"] if schema else []
    df = read_input(input_path, string_cols)

    types = {}
    if schema:
        missing = [c["name"] for c in schema if c["name"] not in df.columns]
        if missing:
            raise DataQualityError(f"baseline input {input_path} lacks schema columns {missing} "
                                   f"(header: {list(df.columns)})")
        types = {c["name"]: c["type"] for c in schema}
        extra = [c for c in df.columns if c not in types]
        if extra:
            print(f"WARNING: columns {extra} of {input_path} are not in the schema; types inferred from data")

    entries, cons_features = [], []
    for name in df.columns:
        series = df[name]
        kind = types.get(name)
        if kind is None:
            vals, present, numeric = to_numeric(series)
            kind = infer_type(vals, present, numeric)
            if kind == "Unknown":
                raise DataQualityError(f"column {name} of baseline input {input_path} has no values "
                                       f"(all {len(series)} rows are empty)")
        entry, info = profile_column(name, series, kind)
        present = info["present"]
        if not present.any():
            raise DataQualityError(f"column {name} of baseline input {input_path} has no values "
                                   f"(all {len(series)} rows are empty); cannot build a baseline")
        feature = {"name": name, "inferred_type": kind, "completeness": float(present.mean())}
        if kind in NUMERIC_TYPES:
            bad = present & ~info["numeric"]
            if bad.any():
                raise DataQualityError(
                    f"column {name} of baseline input {input_path} is declared {kind} but "
                    f"{int(bad.sum())} value(s) are not finite numbers, e.g. {_examples(series, bad)}")
            if kind == "Integral":
                v = info["vals"]
                frac = info["numeric"] & (v != np.floor(np.nan_to_num(v)))
                if frac.any():
                    raise DataQualityError(
                        f"column {name} of baseline input {input_path} is declared Integral but "
                        f"{int(frac.sum())} value(s) have a fraction, e.g. {_examples(series, frac)}")
            entry["inferred_type"] = kind
            feature["num_constraints"] = {"is_non_negative": bool(entry["numerical_statistics"]["min"] >= 0)}
        else:
            entry["inferred_type"] = "String"
            observed = [b["value"] for b in entry["string_statistics"]["distribution"]["categorical"]["buckets"]]
            declared = next((c.get("categories") for c in schema or [] if c["name"] == name), None)
            if declared:
                declared = [str(x) for x in declared]
                unknown = sorted(set(observed) - set(declared))
                if unknown:
                    raise DataQualityError(f"column {name} of baseline input {input_path} has values {unknown} "
                                           f"outside the schema categories {declared}")
                feature["string_constraints"] = {"domains": declared}
            elif entry["string_statistics"]["distinct_count"] <= MAX_DOMAIN:
                feature["string_constraints"] = {"domains": sorted(observed)}
        entries.append(entry)
        cons_features.append(feature)

    statistics = statistics_document(df, entries)
    constraints = {"version": 0.0, "features": cons_features,
                   "monitoring_config": json.loads(json.dumps(DEFAULT_MONITORING_CONFIG))}
    os.makedirs(output_dir, exist_ok=True)
    write_json(os.path.join(output_dir, "statistics.json"), statistics)
    write_json(os.path.join(output_dir, "constraints.json"), constraints)
    print(f"baseline: {len(df)} rows, {len(entries)} features -> {output_dir}")
    return statistics, constraints


# --------------------------------------------------------------------------- drift

def sketch_points(numerical_stats):
    """(sorted values, cumulative weights) of a statistics entry's KLL sketch, or None.

    Reads Model Monitor's sketch layout: data[level] items weigh 2**level. Without a sketch
    falls back to the buckets (mass placed at each bucket's upper bound).
    """
    kll = ((numerical_stats or {}).get("distribution") or {}).get("kll") or {}
    data = (kll.get("sketch") or {}).get("data")
    vals, weights = [], []
    if data:
        for level, items in enumerate(data):
            if items:
                vals.extend(float(x) for x in items)
                weights.extend([float(1 << level)] * len(items))
    if not vals:
        for b in kll.get("buckets") or []:
            if float(b.get("count", 0)) > 0:
                vals.append(float(b["upper_bound"]))
                weights.append(float(b["count"]))
    if not vals:
        return None
    v = np.asarray(vals)
    order = np.argsort(v, kind="stable")
    return v[order], np.cumsum(np.asarray(weights)[order])


def numeric_linf(base_stats, cur_stats):
    """L-infinity distance between the two sketch CDFs on the union of their items."""
    b, c = sketch_points(base_stats), sketch_points(cur_stats)
    if b is None or c is None:
        return None
    grid = np.union1d(b[0], c[0])

    def cdf(points, x):
        vals, cum = points
        idx = np.searchsorted(vals, x, side="right")
        return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / cum[-1]

    return float(np.max(np.abs(cdf(b, grid) - cdf(c, grid)))), float(b[1][-1]), float(c[1][-1])


def categorical_counts(string_stats):
    buckets = (((string_stats or {}).get("distribution") or {}).get("categorical") or {}).get("buckets") or []
    counts = {}
    for bk in buckets:
        counts[str(bk["value"])] = counts.get(str(bk["value"]), 0.0) + float(bk["count"])
    return counts


def categorical_linf(base_counts, cur_counts):
    n, m = sum(base_counts.values()), sum(cur_counts.values())
    if n <= 0 or m <= 0:
        return None
    keys = set(base_counts) | set(cur_counts)
    d = max(abs(base_counts.get(k, 0.0) / n - cur_counts.get(k, 0.0) / m) for k in keys)
    return d, n, m


def chi_squared_pvalue(base_counts, cur_counts):
    """Goodness-of-fit p-value of current counts against the baseline proportions.

    Only baseline categories count (unseen ones are the categorical_values_check's job);
    categories expected below 5 are merged so the chi-squared approximation holds.
    """
    from scipy.stats import chi2  # scipy ships with scikit-learn (and so with its container)

    keys = sorted(base_counts, key=lambda k: base_counts[k])
    n = sum(base_counts.values())
    m = sum(cur_counts.get(k, 0.0) for k in keys)
    if n <= 0 or m <= 0 or len(keys) < 2:
        return None
    exp = [base_counts[k] / n * m for k in keys]
    obs = [cur_counts.get(k, 0.0) for k in keys]
    merged_e, merged_o, acc_e, acc_o = [], [], 0.0, 0.0
    for e, o in zip(exp, obs):  # ascending expected: pool the small ones
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 5:
            merged_e.append(acc_e)
            merged_o.append(acc_o)
            acc_e = acc_o = 0.0
    if acc_e > 0 and merged_e:
        merged_e[-1] += acc_e
        merged_o[-1] += acc_o
    if len(merged_e) < 2:
        return None
    e, o = np.asarray(merged_e), np.asarray(merged_o)
    stat = float(np.sum((o - e) ** 2 / e))
    return float(chi2.sf(stat, len(e) - 1))


def drift_distance(linf_simple, n, m, method):
    """Distance compared with the threshold: 'Simple' or 'Robust' L-infinity.

    Simple is the raw L-infinity distance D. Robust (Model Monitor's default, as in Deequ)
    subtracts the two-sample Kolmogorov-Smirnov critical value for sample sizes n and m:
        D_robust = max(0, D - 1.8 * sqrt((n + m) / (n * m)))
    1.8 = c(alpha) = sqrt(-ln(alpha / 2) / 2) for alpha ~ 0.003, so D_robust > threshold
    means the shift exceeds the threshold even after allowing for sampling noise of two
    samples of these sizes; small batches then do not raise false drift alarms.
    """
    if str(method).lower() == "simple":
        return linf_simple
    return max(0.0, linf_simple - ROBUST_C * math.sqrt((n + m) / (n * m)))


# --------------------------------------------------------------------------- check

def _enabled(value, default=True):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("disabled", "false", "0", "no", "off")


def _merge(base, override):
    out = dict(base)
    for k, v in (override or {}).items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def feature_config(global_cfg, feature):
    over = feature.get("monitoringConfigOverrides") or feature.get("monitoring_config_overrides") or {}
    cfg = _merge(global_cfg, over)
    dist = dict(cfg.get("distribution_constraints") or {})
    if "comparison_method" not in dist and "comparion_method" in dist:  # typo in the AWS docs
        dist["comparison_method"] = dist["comparion_method"]
    cfg["distribution_constraints"] = dist
    return cfg


def _num(value, what, path):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataQualityError(f"constraints file {path}: {what} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise DataQualityError(f"constraints file {path}: {what} is NaN")
    return out


def _pct(x):
    return f"{100.0 * x:.4g}%"


def violation(feature, check, description, distance=None, threshold=None):
    return {"feature_name": feature, "constraint_check_type": check, "description": description,
            "distance": distance, "threshold": threshold}


def run_check(input_path, statistics_path, constraints_path, output_dir):
    base_stats = load_json(statistics_path, "baseline statistics")
    constraints = load_json(constraints_path, "baseline constraints")
    if not isinstance(constraints, dict) or not isinstance(constraints.get("features"), list):
        raise DataQualityError(f"constraints file {constraints_path} has no 'features' list")
    if not isinstance(base_stats, dict) or not isinstance(base_stats.get("features"), list):
        raise DataQualityError(f"statistics file {statistics_path} has no 'features' list")
    stats_by_name = {f["name"]: f for f in base_stats["features"] if isinstance(f, dict) and "name" in f}
    cons_by_name = {}
    for f in constraints["features"]:
        if not isinstance(f, dict) or "name" not in f:
            raise DataQualityError(f"constraints file {constraints_path}: feature without 'name': {f!r}")
        cons_by_name[f["name"]] = f
    global_cfg = _merge(DEFAULT_MONITORING_CONFIG, constraints.get("monitoring_config") or {})

    def base_type(name):
        t = (cons_by_name.get(name) or {}).get("inferred_type") or (stats_by_name.get(name) or {}).get("inferred_type")
        if t not in NUMERIC_TYPES + ("String",):
            s = stats_by_name.get(name) or {}
            t = "String" if "string_statistics" in s else ("Fractional" if "numerical_statistics" in s else "Unknown")
        return t

    expected = list(cons_by_name) + [n for n in stats_by_name if n not in cons_by_name]
    string_cols = [n for n in expected if base_type(n) == "String"]
    df = read_input(input_path, string_cols)
    columns = list(df.columns)
    if expected and not set(columns) & set(expected):
        raise DataQualityError(f"header of input {input_path} {columns[:12]} matches none of the baseline "
                               f"columns {expected[:12]}: is the header row missing?")

    violations, entries = [], []
    for name in expected:
        if name not in columns:
            violations.append(violation(name, "missing_column_check",
                                        f"Column {name} is in the baseline but missing from the current data "
                                        f"(current columns: {columns})."))
    for name in columns:
        if name not in stats_by_name and name not in cons_by_name:
            violations.append(violation(name, "extra_column_check",
                                        f"Column {name} is in the current data but not in the baseline."))

    n_rows = len(df)
    for name in columns:
        series = df[name]
        btype = base_type(name)
        if btype == "Unknown":
            vals, present, numeric = to_numeric(series)
            btype = infer_type(vals, present, numeric)
        kind = btype if btype in NUMERIC_TYPES else "String"
        entry, info = profile_column(name, series, kind)
        entries.append(entry)
        feat = cons_by_name.get(name)
        if feat is None:
            continue
        cfg = feature_config(global_cfg, feat)
        if not _enabled(cfg.get("evaluate_constraints")):
            continue
        present = info["present"]
        n_present = int(present.sum())

        completeness = n_present / n_rows
        if feat.get("completeness") is not None:
            req = _num(feat["completeness"], f"completeness of {name}", constraints_path)
            if completeness < req:
                violations.append(violation(
                    name, "completeness_check",
                    f"Data completeness requirement is not met. Expected: {_pct(req)} non-null values. "
                    f"Observed: only {_pct(completeness)} ({n_present} of {n_rows} rows)."))
        if n_present == 0:
            continue  # nothing to type-check or compare; completeness covers it

        if btype in NUMERIC_TYPES:
            numeric = info["numeric"]
            match = present & numeric
            if btype == "Integral":
                v = info["vals"]
                match = match & (v == np.floor(np.nan_to_num(v)))
            frac = float(match.sum()) / n_present
            req = _num(cfg.get("datatype_check_threshold", 1.0), f"datatype_check_threshold of {name}",
                       constraints_path)
            if frac < req:
                violations.append(violation(
                    name, "data_type_check",
                    f"Data type match requirement is not met. Expected data type: {btype}, Expected match: "
                    f"{_pct(req)}. Observed: Only {_pct(frac)} of data is {btype}. "
                    f"Examples: {_examples(series, present & ~match)}."))
            if _enabled((feat.get("num_constraints") or {}).get("is_non_negative"), default=False):
                neg = numeric & (np.nan_to_num(info["vals"]) < 0)
                if neg.any():
                    violations.append(violation(
                        name, "data_type_check",
                        f"Non-negativity requirement (num_constraints.is_non_negative) is not met: "
                        f"{int(neg.sum())} value(s) below zero, minimum "
                        f"{entry['numerical_statistics'].get('min')}."))
        else:
            domains = (feat.get("string_constraints") or {}).get("domains")
            if domains:
                dom = {str(d) for d in domains}
                values = series[present].astype(str)
                outside = ~values.isin(dom).to_numpy()  # raw values: buckets may be truncated
                frac = 1.0 - float(outside.sum()) / n_present
                req = _num(cfg.get("domain_content_threshold", 1.0), f"domain_content_threshold of {name}",
                           constraints_path)
                if frac < req:
                    unseen = values[outside].value_counts().index.tolist()
                    violations.append(violation(
                        name, "categorical_values_check",
                        f"Baseline domain requirement is not met. Expected: {_pct(req)} of values in the "
                        f"baseline domain {sorted(dom)}. Observed: only {_pct(frac)}; values not in the "
                        f"domain: {unseen[:10]}."))

        dist = cfg["distribution_constraints"]
        base_entry = stats_by_name.get(name)
        if not _enabled(dist.get("perform_comparison")) or base_entry is None:
            continue
        if btype in NUMERIC_TYPES:
            res = numeric_linf(base_entry.get("numerical_statistics"), entry.get("numerical_statistics"))
            if res is None:
                continue
            method = dist.get("comparison_method", "Robust")
            d = drift_distance(res[0], res[1], res[2], method)
            thr = _num(dist.get("comparison_threshold", 0.1), f"comparison_threshold of {name}", constraints_path)
            if d > thr:
                violations.append(violation(
                    name, "baseline_drift_check",
                    f"Numerical distance: {d:.6g} exceeds numerical threshold: {thr:.6g} "
                    f"(L-infinity, {method}; raw distance {res[0]:.6g}, n={res[1]:.0f} baseline, "
                    f"m={res[2]:.0f} current).", d, thr))
        else:
            b_counts = categorical_counts(base_entry.get("string_statistics"))
            c_counts = categorical_counts(entry["string_statistics"])
            method = str(dist.get("categorical_drift_method") or "LInfinity")
            thr = _num(dist.get("categorical_comparison_threshold", dist.get("comparison_threshold", 0.1)),
                       f"categorical_comparison_threshold of {name}", constraints_path)
            if method.lower() == "chisquared":
                p = chi_squared_pvalue(b_counts, c_counts)
                if p is not None and p < thr:
                    violations.append(violation(
                        name, "baseline_drift_check",
                        f"Categorical chi-squared test p-value: {p:.6g} is below categorical threshold: "
                        f"{thr:.6g}.", p, thr))
            else:
                res = categorical_linf(b_counts, c_counts)
                if res is None:
                    continue
                d = drift_distance(res[0], res[1], res[2], dist.get("comparison_method", "Robust"))
                if d > thr:
                    violations.append(violation(
                        name, "baseline_drift_check",
                        f"Categorical distance: {d:.6g} exceeds categorical threshold: {thr:.6g} "
                        f"(L-infinity; raw distance {res[0]:.6g}).", d, thr))

    statistics = statistics_document(df, entries)
    mm_violations = {"violations": [{k: v[k] for k in ("feature_name", "constraint_check_type", "description")}
                                    for v in violations]}
    summary = {"violation_count": len(violations), "violations": violations, "row_count": n_rows}
    os.makedirs(output_dir, exist_ok=True)
    write_json(os.path.join(output_dir, "statistics.json"), statistics)
    write_json(os.path.join(output_dir, "constraint_violations.json"), mm_violations)
    write_json(os.path.join(output_dir, "summary.json"), summary)
    print(f"check: {n_rows} rows, {len(violations)} violation(s) -> {output_dir}")
    for v in violations:
        print(f"  {v['feature_name']}: {v['constraint_check_type']}: {v['description']}")
    return summary


def write_json(path, doc):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, allow_nan=False)
        fh.write("\n")


# --------------------------------------------------------------------------- CLI

def fail(message, code):
    print(f"ERROR: {message}", file=sys.stderr)
    path = container_path("/opt/ml/output/message")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(message.replace("\n", " ")[:1000] + "\n")
    except OSError as exc:
        print(f"ERROR: cannot write failure message to {path}: {exc}", file=sys.stderr)
    return code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("baseline", help="profile a baseline data set -> statistics.json, constraints.json")
    b.add_argument("--input", default="/opt/ml/processing/input/baseline/")
    b.add_argument("--schema", default=None,
                   help="dataset_schema.json (default: the container path; types are inferred if it is absent)")
    b.add_argument("--output", default="/opt/ml/processing/output")
    c = sub.add_parser("check", help="check a data set against a baseline")
    c.add_argument("--input", default="/opt/ml/processing/input/data_check/")
    c.add_argument("--baseline-statistics", default="/opt/ml/processing/baseline/statistics/statistics.json")
    c.add_argument("--baseline-constraints", default="/opt/ml/processing/baseline/constraints/constraints.json")
    c.add_argument("--schema", default=None, help="accepted for symmetry; types come from the baseline")
    c.add_argument("--output", default="/opt/ml/processing/output")
    args = parser.parse_args(argv)
    try:
        if args.command == "baseline":
            schema = args.schema or "/opt/ml/processing/input/schema/dataset_schema.json"
            run_baseline(container_path(args.input), container_path(schema), args.schema is not None,
                         container_path(args.output))
        else:
            run_check(container_path(args.input), container_path(args.baseline_statistics),
                      container_path(args.baseline_constraints), container_path(args.output))
    except DataQualityError as exc:
        return fail(str(exc), 1)
    except MemoryError:
        return fail("out of memory while profiling the input; use a larger processing instance", 2)
    except Exception as exc:  # report, never a bare stack trace; DQ_DEBUG=1 re-raises
        if os.environ.get("DQ_DEBUG"):
            raise
        return fail(f"internal error in data_quality.py {args.command}: {type(exc).__name__}: {exc}", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
