"""constraints.json: suggested from a baseline profile, and the monitoring_config read as Model Monitor does.

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
  (categorical_comparison_threshold). See drift.drift_distance() for the Robust correction.
- evaluate_constraints / perform_comparison "Disabled" (or false) switch checks off;
  per-feature "monitoringConfigOverrides" (or "monitoring_config_overrides") win over
  the global monitoring_config.
"""
from __future__ import annotations

import copy
import math

from .profile import NUMERIC_TYPES, NumericProfile, StringProfile
from .source import DataQualityError

MAX_DOMAIN = 100  # string features with more distinct values get no domain constraint

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


def suggest_feature(name: str, kind: str, profile, declared_categories, rows: int, where: str) -> dict:
    """The constraints entry of one baseline column; bad baseline data is an error, not a constraint."""
    if not profile.present:
        raise DataQualityError(f"column {name} of baseline input {where} has no values "
                               f"(all {rows} rows are empty); cannot build a baseline")
    feature = {"name": name, "inferred_type": kind, "completeness": profile.present / rows}
    if kind in NUMERIC_TYPES:
        assert isinstance(profile, NumericProfile)
        if profile.not_numeric.count:
            raise DataQualityError(
                f"column {name} of baseline input {where} is declared {kind} but {profile.not_numeric.count} "
                f"value(s) are not finite numbers, e.g. {profile.not_numeric.text()}")
        if kind == "Integral" and profile.fractional.count:
            raise DataQualityError(
                f"column {name} of baseline input {where} is declared Integral but {profile.fractional.count} "
                f"value(s) have a fraction, e.g. {profile.fractional.text()}")
        feature["num_constraints"] = {"is_non_negative": bool(profile.min >= 0)}
        return feature
    assert isinstance(profile, StringProfile)
    observed = [v for v, _ in profile.sorted_counts()]
    if declared_categories:
        declared = [str(x) for x in declared_categories]
        unknown = sorted(set(observed) - set(declared))
        if unknown or profile.dropped:
            raise DataQualityError(f"column {name} of baseline input {where} has values {unknown[:20]} "
                                   f"outside the schema categories {declared}")
        feature["string_constraints"] = {"domains": declared}
    elif not profile.dropped and len(observed) <= MAX_DOMAIN:
        feature["string_constraints"] = {"domains": sorted(observed)}
    return feature


def constraints_document(features: list[dict], drift: dict | None = None) -> dict:
    """The suggested constraints; ``drift`` overrides distribution_constraints (comparison_threshold, ...)."""
    config = copy.deepcopy(DEFAULT_MONITORING_CONFIG)
    config["distribution_constraints"].update(drift or {})
    return {"version": 0.0, "features": features, "monitoring_config": config}


# --------------------------------------------------------------------------- reading a constraints file

def enabled(value, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("disabled", "false", "0", "no", "off")


def _merge(base: dict, override: dict | None) -> dict:
    out = dict(base)
    for k, v in (override or {}).items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def global_config(constraints: dict) -> dict:
    return _merge(DEFAULT_MONITORING_CONFIG, constraints.get("monitoring_config") or {})


def feature_config(global_cfg: dict, feature: dict) -> dict:
    over = feature.get("monitoringConfigOverrides") or feature.get("monitoring_config_overrides") or {}
    cfg = _merge(global_cfg, over)
    dist = dict(cfg.get("distribution_constraints") or {})
    if "comparison_method" not in dist and "comparion_method" in dist:  # typo in the AWS docs
        dist["comparison_method"] = dist["comparion_method"]
    cfg["distribution_constraints"] = dist
    return cfg


def number(value, what: str, path: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataQualityError(f"constraints file {path}: {what} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise DataQualityError(f"constraints file {path}: {what} is NaN")
    return out


class Baseline:
    """A baseline's statistics and constraints, indexed by feature name."""

    def __init__(self, statistics: dict, constraints: dict, statistics_path: str, constraints_path: str):
        if not isinstance(constraints, dict) or not isinstance(constraints.get("features"), list):
            raise DataQualityError(f"constraints file {constraints_path} has no 'features' list")
        if not isinstance(statistics, dict) or not isinstance(statistics.get("features"), list):
            raise DataQualityError(f"statistics file {statistics_path} has no 'features' list")
        self.constraints_path = constraints_path
        self.stats = {f["name"]: f for f in statistics["features"] if isinstance(f, dict) and "name" in f}
        self.cons: dict[str, dict] = {}
        for f in constraints["features"]:
            if not isinstance(f, dict) or "name" not in f:
                raise DataQualityError(f"constraints file {constraints_path}: feature without 'name': {f!r}")
            self.cons[f["name"]] = f
        self.global_cfg = global_config(constraints)

    def columns(self) -> list[str]:
        return list(self.cons) + [n for n in self.stats if n not in self.cons]

    def type_of(self, name: str) -> str:
        t = (self.cons.get(name) or {}).get("inferred_type") or (self.stats.get(name) or {}).get("inferred_type")
        if t not in NUMERIC_TYPES + ("String",):
            s = self.stats.get(name) or {}
            t = "String" if "string_statistics" in s else ("Fractional" if "numerical_statistics" in s else "Unknown")
        return t
