"""Data-quality engine entry point (SageMaker processing container and offline runtime).

The engine is the ``dataquality`` package beside this file (see its __init__ for the layout and
dataquality/cli.py for the command line):

    python data_quality.py baseline --input DIR_OR_FILE --schema FILE --output DIR
    python data_quality.py check --input DIR_OR_FILE --baseline-statistics FILE --baseline-constraints FILE --output DIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dataquality.cli import main  # noqa: E402
from dataquality.drift import drift_distance, sketch_points  # noqa: E402,F401
from dataquality.engine import merge_partials, run_baseline, run_check  # noqa: E402,F401
from dataquality.kll import KLL, RANK_ERROR  # noqa: E402,F401
from dataquality.kll import K as KLL_K  # noqa: E402,F401
from dataquality.source import DataQualityError  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
