"""What can go wrong when a pipeline is built, split by whose move it is.

A :class:`UserError` is the user's to fix (a file, a value, the state of the account): command lines print
its message and exit with its ``exit_code``. Anything else is a bug of ours and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Wrong input or account state; the message names the file, key or resource and what was expected."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration file is missing, unparsable or holds a wrong value."""


class PipelineBuildError(UserError):
    """The pipeline cannot be built from the current state of the account."""


class NoApprovedModelError(PipelineBuildError):
    """The inference pipeline needs an Approved model version and the group has none yet."""

    exit_code = 3  # CI tolerates it on a first deploy: approving a version triggers a redeploy


class AwsCallBlocked(PipelineBuildError):
    """A call to AWS while only writing the definition (``--definition-out``)."""
