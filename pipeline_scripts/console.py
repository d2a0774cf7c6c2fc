"""Console logging shared by the pipeline scripts and the offline runtime (stdlib only, so it can
be set up before the SageMaker SDK is imported)."""

from __future__ import annotations

import logging
import warnings


class _SdkChatterFilter(logging.Filter):
    """The SDK and botocore log every credential lookup and definition detail at INFO/WARNING;
    keep their errors, drop the rest, so the console shows what this template does."""

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = record.name.split(".")[0] in ("sagemaker", "botocore", "boto3", "urllib3")
        return not noisy or record.levelno >= logging.ERROR


def configure_logging(level: int = logging.INFO) -> None:
    """Console logging for the command line tools. The first caller sets the level (the offline
    runtime keeps its console at WARNING when it runs these scripts in-process)."""
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")
    warnings.filterwarnings("ignore", message="The 'dependencies' parameter is deprecated")
    root = logging.getLogger()
    if any(getattr(h, "template_console", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.template_console = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_SdkChatterFilter())
    root.addHandler(handler)
    root.setLevel(min(level, root.level or logging.WARNING))
