"""One error hierarchy for dnnops: every message names what was wrong, where, and the fix.

Each error carries both of its edges: the CLI maps ``exit_code`` straight to the process
exit status (INTERFACE.md: 1 a check failed, 2 a usage error), so a script can tell a bad
config from a failed gate, and every HTTP route answers ``http_status``
(``serve.errors.http_error_of``), so no route picks a status by hand.
"""

from __future__ import annotations


class DnnopsError(Exception):
    """Base class: a problem the user can act on, never an internal traceback."""

    exit_code = 1
    http_status = 400
    """The status an HTTP route answers this error with."""


class UsageError(DnnopsError):
    """The command line or the project file asks for something impossible."""

    exit_code = 2


class ConfigError(UsageError):
    """``dnnops.yaml`` is missing, unreadable or violates the schema."""


class DataError(DnnopsError):
    """A data source cannot be read or does not hold what the project says it holds."""


class DataValidationFailed(DnnopsError):
    """A file broke its schema; ``findings`` lists every violation."""

    def __init__(self, message: str, findings: list[object]) -> None:
        super().__init__(message)
        self.findings = findings


class MalformedInput(DnnopsError):
    """A prediction request is not the shape any model takes (``instances`` is not a list,
    rows mix objects and lists): HTTP 400."""


class InputViolation(DnnopsError):
    """Well-formed inputs that break the version's schema or input policy: HTTP 422, and
    the message names the tensor or feature and the rule."""

    http_status = 422


class GatesFailed(DnnopsError):
    """A version failed its evaluation gates and was asked to serve traffic."""

    http_status = 409


class ModelError(DnnopsError):
    """A model architecture cannot be built from its spec."""


class CheckpointError(DnnopsError):
    """A checkpoint is missing, unreadable or does not match the run."""


class TrainingError(DnnopsError):
    """Training cannot go on as configured (a batch does not fit in the device's memory)."""


class RegistrationFailed(DnnopsError):
    """A run finished but its version could not be registered; the run stays registrable."""


class RunNotFound(UsageError):
    """The run id given on the command line does not exist in the metadata store."""

    http_status = 404


class TrainingInterrupted(DnnopsError):
    """SIGINT or SIGTERM stopped training after a checkpoint was written."""

    def __init__(self, run_id: str, signum: int) -> None:
        super().__init__(
            f"training interrupted by signal {signum}; a checkpoint was written. "
            f"Continue with: dnnops train --resume {run_id}"
        )
        self.run_id = run_id
        self.exit_code = 128 + signum
