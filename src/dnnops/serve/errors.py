"""HTTP errors with one JSON shape, ``{"error": "..."}``, as the Open Inference Protocol has it."""

from __future__ import annotations

from dnnops.errors import DnnopsError


class HttpError(Exception):
    status = 500
    reason: str | None = None
    """A cause monitoring counts, written to the failure's log record."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HttpError):
    status = 400


class Unauthorized(HttpError):
    status = 401


class Forbidden(HttpError):
    status = 403


class NotFound(HttpError):
    status = 404


class Conflict(HttpError):
    """The request clashes with the server's state (a rollout already in progress)."""

    status = 409


class PayloadTooLarge(HttpError):
    status = 413


class Unprocessable(HttpError):
    """Well-formed, but a value breaks a rule (an unknown KPI): the message names the field."""

    status = 422


class InvalidOutput(HttpError):
    """The model answered NaN or infinity: a server error, never a class or a number."""

    status = 500
    reason = "invalid_output"


class Unavailable(HttpError):
    status = 503


class LogUnwritable(Unavailable):
    """The prediction or feedback log refused the write (a full disk): nothing is
    acknowledged that is not logged, so the answer is withheld."""

    def __init__(self, log: str, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(
            f"the {log} log cannot be written ({reason}); nothing was acknowledged: "
            "free space where the home's logs/ lives, then retry",
            {"Retry-After": "5"},
        )


class GatewayTimeout(HttpError):
    status = 504


def http_error_of(exc: DnnopsError) -> HttpError:
    """The HTTP answer to a library error: the status its class declares, its message."""
    error = HttpError(str(exc))
    error.status = exc.http_status
    return error
