"""What can go wrong upstream, in terms a caller can act on.

    UpstreamError                  base; `retryable` says whether trying later may help
      UpstreamUnavailable          down, overloaded or unreachable: retry later (`retry_after`)
      UpstreamRejected             4xx: the partner refused the data (`partner_message` for staff)
        UpstreamNotFound           404
      UpstreamAuthFailed           our credentials are wrong: alert admins
      UpstreamProtocolError        the answer is not the JSON the contract promises: retry later
      UpstreamOutcomeUnknown       a POST may or may not have been applied: mark for review

`str(error)` is a short message staff may read and the call log may keep: it never
contains patient data nor the partner's own words (those may echo what we sent;
they are only in `UpstreamRejected.partner_message`).
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of every error the client raises."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class UpstreamUnavailable(UpstreamError):
    """The partner could not be reached or asked us to slow down; try again later.

    `retry_after` is the partner's own hint in seconds (from `Retry-After`), if any.
    """

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamRejected(UpstreamError):
    """The partner refused the request (4xx). Repeating it unchanged will not help."""

    def __init__(self, message: str, *, status: int | None = None, partner_message: str = "") -> None:
        super().__init__(message, status=status)
        self.partner_message = partner_message


class UpstreamNotFound(UpstreamRejected):
    """The partner does not know the id we asked about (404)."""


class UpstreamAuthFailed(UpstreamError):
    """The partner does not accept our credentials: an admin must fix the configuration."""


class UpstreamProtocolError(UpstreamError):
    """The partner answered something that is not what the contract promises."""

    retryable = True


class UpstreamOutcomeUnknown(UpstreamError):
    """A POST may or may not have been applied upstream; it was not repeated.

    The caller marks its record "needs review" instead of sending it again, so a
    timeout can never create a duplicate order or registration.
    """


# What a read (a poll) can fail with, by the name a result's `last_error_class` keeps.
POLL_ERROR_CLASSES = tuple(
    cls.__name__
    for cls in (UpstreamUnavailable, UpstreamNotFound, UpstreamRejected, UpstreamAuthFailed, UpstreamProtocolError)
)
