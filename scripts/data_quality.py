"""Data-quality engine entry point (SageMaker processing container and offline runtime).

The engine is the step library's ``steplib.dataquality`` package (see its __init__ for the layout and
steplib/dataquality/cli.py for the command line); it ships to the jobs with the step library:

    python data_quality.py baseline --input DIR_OR_FILE --schema FILE --output DIR
    python data_quality.py check --input DIR_OR_FILE --baseline-statistics FILE --baseline-constraints FILE --output DIR
"""
import sys

from steplib.dataquality.cli import main
from steplib.dataquality.drift import drift_distance, sketch_points  # noqa: F401  (the engine's API, for tests and benches)
from steplib.dataquality.engine import merge_partials, run_baseline, run_check, run_values_baseline  # noqa: F401
from steplib.dataquality.kll import KLL, RANK_ERROR  # noqa: F401
from steplib.dataquality.kll import K as KLL_K  # noqa: F401
from steplib.dataquality.source import DataQualityError  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
