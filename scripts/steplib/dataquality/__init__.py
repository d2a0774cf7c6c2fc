"""Streaming data-quality engine: baseline and check in SageMaker Model Monitor's file formats.

Runs as a SageMaker processing step in the stock scikit-learn container (numpy, pandas, scipy) and in
the offline runtime. It reads the CSV input in chunks and keeps mergeable statistics only, so its
memory does not grow with the row count, and a job sharded over several instances merges to the
statistics of one pass.

    source       input files, header, chunked CSV reading, schema
    kll          the mergeable KLL quantile sketch (Model Monitor's layout)
    profile      per-column mergeable profiles (counts, min/max, moments, sketch, value counts)
    constraints  constraints suggested from a baseline; the monitoring_config as Model Monitor reads it
    drift        distances between baseline and current distributions
    checks       one function per constraint check type
    engine       baseline / check / partial results and their merge
    cli          the container's command line (scripts/data_quality.py)

File formats follow SageMaker Model Monitor's documented schemas (statistics.json, constraints.json,
constraint_violations.json); statistics/constraints written by Model Monitor are accepted as baselines.
"""

# The distribution_constraints a baseline takes from its command line (the training YAMLs' data_quality keys);
# here, in the package that imports nothing, so the pipeline scripts read them without loading pandas.
DRIFT_SETTINGS = ("comparison_threshold", "comparison_method", "categorical_comparison_threshold")
