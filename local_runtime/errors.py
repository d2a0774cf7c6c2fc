"""Error types of the offline runtime.

Every RuntimeErrorBase is the user's to fix (a name, an argument, a file, the workspace's state): sm-local
prints its message and exits 2. Any other exception is a bug of ours and keeps its traceback.
"""


class RuntimeErrorBase(Exception):
    """Base class of the runtime's user-facing errors: every message names the thing that is wrong."""


class NotFoundError(RuntimeErrorBase):
    """A name the user gave (execution, step, object, logs, report) names nothing; the message names it and,
    where it helps, what exists."""


class UsageError(RuntimeErrorBase):
    """A command argument is malformed (a model package reference, a --param); the message names the value
    and the expected form."""


class DefinitionError(RuntimeErrorBase):
    """The pipeline definition uses something this runtime cannot execute (named in the message)."""


class StepFailure(RuntimeErrorBase):
    """A step failed; message is the step's FailureReason."""

    def __init__(self, reason, metadata=None, properties=None):
        super().__init__(reason)
        self.reason = reason
        self.metadata = metadata or {}
        self.properties = properties or {}


class TerraformError(RuntimeErrorBase):
    """A Terraform file could not be read or resolved (file and expression named)."""


class ConfigurationError(RuntimeErrorBase):
    """The template's [tool.sm-local] table (or a file it names) is missing or wrong (file and key named)."""


class StateError(RuntimeErrorBase):
    """The runtime's saved state is unreadable (file named) or does not allow the request (e.g. retrying a
    succeeded execution)."""
