"""One function per Model Monitor constraint check type. Each returns a list of violations."""
from __future__ import annotations

from .constraints import Baseline, enabled, feature_config, number
from .drift import categorical_counts, categorical_linf, chi_squared_pvalue, drift_distance, numeric_linf
from .profile import NUMERIC_TYPES, NumericProfile, StringProfile


def violation(feature: str, check: str, description: str, distance=None, threshold=None) -> dict:
    return {"feature_name": feature, "constraint_check_type": check, "description": description,
            "distance": distance, "threshold": threshold}


def _pct(x: float) -> str:
    return f"{100.0 * x:.4g}%"


def missing_column_check(baseline: Baseline, columns: list[str]) -> list[dict]:
    return [violation(name, "missing_column_check",
                      f"Column {name} is in the baseline but missing from the current data "
                      f"(current columns: {columns}).")
            for name in baseline.columns() if name not in columns]


def extra_column_check(baseline: Baseline, columns: list[str]) -> list[dict]:
    return [violation(name, "extra_column_check", f"Column {name} is in the current data but not in the baseline.")
            for name in columns if name not in baseline.stats and name not in baseline.cons]


def completeness_check(name: str, profile, feature: dict, path: str) -> list[dict]:
    if feature.get("completeness") is None:
        return []
    required = number(feature["completeness"], f"completeness of {name}", path)
    observed = profile.present / profile.rows if profile.rows else 0.0
    if observed >= required:
        return []
    return [violation(name, "completeness_check",
                      f"Data completeness requirement is not met. Expected: {_pct(required)} non-null values. "
                      f"Observed: only {_pct(observed)} ({profile.present} of {profile.rows} rows).")]


def data_type_check(name: str, btype: str, profile: NumericProfile, feature: dict, cfg: dict, path: str) -> list[dict]:
    """Values of the baseline's numeric type, and num_constraints.is_non_negative."""
    out = []
    mismatched = profile.not_numeric.count + (profile.fractional.count if btype == "Integral" else 0)
    share = 1.0 - mismatched / profile.present
    required = number(cfg.get("datatype_check_threshold", 1.0), f"datatype_check_threshold of {name}", path)
    if share < required:
        examples = profile.not_numeric.items + (profile.fractional.items if btype == "Integral" else [])
        out.append(violation(
            name, "data_type_check",
            f"Data type match requirement is not met. Expected data type: {btype}, Expected match: "
            f"{_pct(required)}. Observed: Only {_pct(share)} of data is {btype}. Examples: {', '.join(examples[:3])}."))
    if enabled((feature.get("num_constraints") or {}).get("is_non_negative"), default=False) and profile.negative:
        out.append(violation(
            name, "data_type_check",
            f"Non-negativity requirement (num_constraints.is_non_negative) is not met: "
            f"{profile.negative} value(s) below zero, minimum {profile.min}."))
    return out


def categorical_values_check(name: str, profile: StringProfile, feature: dict, cfg: dict, path: str) -> list[dict]:
    domains = (feature.get("string_constraints") or {}).get("domains")
    if not domains:
        return []
    domain = {str(d) for d in domains}
    # values no longer counted one by one (over 100,000 distinct) are counted as outside the domain
    outside = [(v, c) for v, c in profile.sorted_counts() if v not in domain]
    share = 1.0 - (sum(c for _, c in outside) + profile.dropped) / profile.present
    required = number(cfg.get("domain_content_threshold", 1.0), f"domain_content_threshold of {name}", path)
    if share >= required:
        return []
    return [violation(name, "categorical_values_check",
                      f"Baseline domain requirement is not met. Expected: {_pct(required)} of values in the "
                      f"baseline domain {sorted(domain)}. Observed: only {_pct(share)}; values not in the "
                      f"domain: {[v for v, _ in outside[:10]]}.")]


def baseline_drift_check(name: str, btype: str, base_entry: dict, entry: dict, dist: dict, path: str) -> list[dict]:
    if btype in NUMERIC_TYPES:
        res = numeric_linf(base_entry.get("numerical_statistics"), entry.get("numerical_statistics"))
        if res is None:
            return []
        method = dist.get("comparison_method", "Robust")
        d = drift_distance(res[0], res[1], res[2], method)
        thr = number(dist.get("comparison_threshold", 0.1), f"comparison_threshold of {name}", path)
        if d <= thr:
            return []
        return [violation(name, "baseline_drift_check",
                          f"Numerical distance: {d:.6g} exceeds numerical threshold: {thr:.6g} "
                          f"(L-infinity, {method}; raw distance {res[0]:.6g}, n={res[1]:.0f} baseline, "
                          f"m={res[2]:.0f} current).", d, thr)]
    b_counts = categorical_counts(base_entry.get("string_statistics"))
    c_counts = categorical_counts(entry.get("string_statistics"))
    method = str(dist.get("categorical_drift_method") or "LInfinity")
    thr = number(dist.get("categorical_comparison_threshold", dist.get("comparison_threshold", 0.1)),
                 f"categorical_comparison_threshold of {name}", path)
    if method.lower() == "chisquared":
        p = chi_squared_pvalue(b_counts, c_counts)
        if p is None or p >= thr:
            return []
        return [violation(name, "baseline_drift_check",
                          f"Categorical chi-squared test p-value: {p:.6g} is below categorical threshold: "
                          f"{thr:.6g}.", p, thr)]
    res = categorical_linf(b_counts, c_counts)
    if res is None:
        return []
    d = drift_distance(res[0], res[1], res[2], dist.get("comparison_method", "Robust"))
    if d <= thr:
        return []
    return [violation(name, "baseline_drift_check",
                      f"Categorical distance: {d:.6g} exceeds categorical threshold: {thr:.6g} "
                      f"(L-infinity; raw distance {res[0]:.6g}).", d, thr)]


def feature_checks(name: str, btype: str, profile, entry: dict, baseline: Baseline) -> list[dict]:
    """Every check of one feature the baseline constrains, as its (possibly overridden) config says."""
    feature = baseline.cons.get(name)
    if feature is None:
        return []
    cfg = feature_config(baseline.global_cfg, feature)
    if not enabled(cfg.get("evaluate_constraints")):
        return []
    path = baseline.constraints_path
    out = completeness_check(name, profile, feature, path)
    if profile.present == 0:
        return out  # nothing to type-check or compare; completeness covers it
    if btype in NUMERIC_TYPES:
        out += data_type_check(name, btype, profile, feature, cfg, path)
    else:
        out += categorical_values_check(name, profile, feature, cfg, path)
    dist = cfg["distribution_constraints"]
    base_entry = baseline.stats.get(name)
    if enabled(dist.get("perform_comparison")) and base_entry is not None:
        out += baseline_drift_check(name, btype, base_entry, entry, dist, path)
    return out

