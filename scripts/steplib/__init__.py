"""Step library: what every step script shares (container paths, the error type and failure file, the strict
CSV reader, the data set schema, the metrics). Shipped to every processing and training job beside the scripts
(see pipeline_scripts/shipping.py); importable here as ``steplib`` (pyproject maps scripts/steplib).

Kept free of heavy imports: the schema and CSV modules need only the standard library, so tools and the
data-quality engine import them cheaply; ``steplib.metrics`` imports numpy.
"""

from . import artifacts
from .errors import InputError, Parser, fail, run_main
from .paths import container_path, list_files

__all__ = ["InputError", "Parser", "artifacts", "container_path", "fail", "list_files", "run_main"]
