"""Command line of the data-quality engine, as a SageMaker processing container runs it.

    data_quality.py baseline [--input DIR_OR_FILE] [--schema FILE] [--output DIR]
        -> statistics.json, constraints.json
    data_quality.py check [--input DIR_OR_FILE] [--baseline-statistics FILE] [--baseline-constraints FILE] [--output DIR]
        -> statistics.json, constraint_violations.json, summary.json

Sharding: on a job with more than one instance (``hosts`` in /opt/ml/config/resourceconfig.json, input
distributed ShardedByS3Key) every instance writes ``partial-<host>.json`` (its mergeable profile) instead;
``--partials DIR`` then merges them (a one-instance step) and writes the files above. ``--partial`` forces
a partial on one instance.

Exit codes: 0 done (violations do not fail a check), 1 bad/unreadable input (the reason is written to
/opt/ml/output/message), 2 internal error.
"""
from __future__ import annotations

import argparse
import json
import os

from .. import paths
from ..errors import InputError, fail
from ..paths import container_path
from . import DRIFT_SETTINGS, engine
from .source import DataQualityError

def current_host() -> tuple[str, int]:
    """(this instance's host name, number of instances); see steplib.paths.current_host."""
    try:
        host, hosts = paths.current_host()
    except InputError as exc:
        raise DataQualityError(str(exc)) from None
    return host, len(hosts)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def drift_settings(args) -> dict:
    """The distribution_constraints the command line sets (only those given: the rest keep the defaults)."""
    return {key: getattr(args, key) for key in DRIFT_SETTINGS if getattr(args, key, None) is not None}


def add_drift_arguments(p: argparse.ArgumentParser) -> None:
    """How much drift the checks flag: monitoring_config.distribution_constraints of the constraints.json a
    baseline writes (the data-quality baseline's and the evaluation's prediction baseline's)."""
    p.add_argument("--comparison-threshold", type=_fraction, default=None,
                   help="numeric drift: CDF distance that is flagged (default 0.1)")
    p.add_argument("--comparison-method", choices=("Robust", "Simple"), default=None,
                   help="Robust subtracts the two-sample K-S allowance first (default), Simple does not")
    p.add_argument("--categorical-comparison-threshold", type=_fraction, default=None,
                   help="categorical drift: frequency distance that is flagged (default 0.1)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Data-quality baseline and check in Model Monitor's file formats")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("baseline", help="profile a baseline data set -> statistics.json, constraints.json")
    b.add_argument("--input", default="/opt/ml/processing/input/baseline/")
    b.add_argument("--schema", default=None,
                   help="dataset_schema.json (default: the container path; types are inferred if it is absent)")
    add_drift_arguments(b)
    c = sub.add_parser("check", help="check a data set against a baseline")
    c.add_argument("--input", default="/opt/ml/processing/input/data_check/")
    c.add_argument("--baseline-statistics", default="/opt/ml/processing/baseline/statistics/statistics.json")
    c.add_argument("--baseline-constraints", default="/opt/ml/processing/baseline/constraints/constraints.json")
    c.add_argument("--schema", default=None, help="accepted for symmetry; types come from the baseline")
    for s in (b, c):
        s.add_argument("--output", default="/opt/ml/processing/output")
        s.add_argument("--partials", default=None, help="merge the partial-*.json of a sharded job found here")
        s.add_argument("--partial", action="store_true", help="write this instance's partial result only")
    return p


def run(args) -> None:
    output = container_path(args.output)
    host, hosts = current_host()
    write_partial = args.partial or (hosts > 1 and not args.partials)
    if write_partial and not engine.has_input_files(container_path(args.input)):
        # ShardedByS3Key with fewer objects than instances leaves some instances without data
        engine.write_empty_partial(output, host)
        return
    if args.command == "baseline":
        if args.partials:
            profile = engine.merge_partials(container_path(args.partials))
            engine.finish_baseline(profile, container_path(args.partials), output, drift_settings(args))
            return
        schema = args.schema or "/opt/ml/processing/input/schema/dataset_schema.json"
        profile = engine.baseline_profile(container_path(args.input), container_path(schema), args.schema is not None,
                                          require_rows=not write_partial)
        if write_partial:
            engine.write_partial(profile, output, host)
        else:
            engine.finish_baseline(profile, container_path(args.input), output, drift_settings(args))
        return
    baseline = engine.load_baseline(container_path(args.baseline_statistics), container_path(args.baseline_constraints))
    if args.partials:
        engine.finish_check(engine.merge_partials(container_path(args.partials)), baseline, output)
        return
    profile = engine.check_profile(container_path(args.input), baseline, require_rows=not write_partial)
    if write_partial:
        engine.write_partial(profile, output, host)
    else:
        engine.finish_check(profile, baseline, output)


def main(argv=None) -> int:
    """0 on success; bad input exits 1, anything else 2, with the reason in /opt/ml/output/message."""
    args = parser().parse_args(argv)
    try:
        run(args)
    except DataQualityError as exc:
        fail(str(exc), "processing", 1)
    except MemoryError:
        fail("out of memory while profiling the input; use a larger processing instance", "processing", 2)
    except Exception as exc:  # report, never a bare stack trace; DQ_DEBUG=1 re-raises
        if os.environ.get("DQ_DEBUG"):
            raise
        fail(f"internal error in data_quality.py {args.command}: {type(exc).__name__}: {exc}", "processing", 2)
    return 0
