"""Error types of the offline runtime."""


class RuntimeErrorBase(Exception):
    """Base class: every message names the thing that is wrong."""


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
