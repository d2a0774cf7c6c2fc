"""How a step script fails: one error type for bad input, one failure file SageMaker reads.

SageMaker reads the reason a container writes before it exits non-zero (first 1 KB):
  * processing jobs: /opt/ml/output/message -> DescribeProcessingJob ``ExitMessage``
    (https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html)
  * training jobs:   /opt/ml/output/failure -> DescribeTrainingJob ``FailureReason``
    (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html)
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable

from .paths import container_path

FAILURE_FILES = {"processing": "/opt/ml/output/message", "training": "/opt/ml/output/failure"}
MAX_MESSAGE = 1024  # SageMaker keeps the first 1 KB of the file


class InputError(Exception):
    """Bad input: the message names the file, the line, the column and the value."""


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as an InputError (a failure message), not a bare exit 2."""

    def error(self, message):
        raise InputError(f"bad arguments: {message}")


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def fail(message: object, job: str = "processing", code: int = 1) -> None:
    """Write the failure reason where SageMaker reads it for this job type, print it, exit non-zero."""
    text = one_line(message).encode("utf-8")[:MAX_MESSAGE].decode("utf-8", "ignore")
    print(f"ERROR: {text}", file=sys.stderr)
    path = container_path(FAILURE_FILES[job])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")
    sys.exit(code)


def run_main(main: Callable[[], object], name: str, job: str = "processing",
             sanitize: Callable[[str], str] = lambda m: m) -> None:
    """The ``if __name__ == '__main__'`` of every step script: bad input ends in its own message, any other
    exception in a traceback (job log) plus '<name> failed: <type>: <message>'. ``sanitize`` lets a script
    keep words with a meaning to event rules (contracts/pipelines.json markers) out of ordinary failures."""
    try:
        main()
    except InputError as exc:
        fail(sanitize(one_line(exc)), job)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed: traceback + failure message
        traceback.print_exc()
        fail(sanitize(f"{name} failed: {type(exc).__name__}: {one_line(exc)}"), job)
