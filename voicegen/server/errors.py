"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the matching HTTP status.

Every refusal the server makes (bad field, unknown voice, too long, queue full, timeout, missing key) is an
`ApiError`; the app turns it into that JSON body, so OpenAI's clients raise their usual exceptions
(`openai.BadRequestError`, `AuthenticationError`, `RateLimitError`, ...) with our message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INVALID_REQUEST = "invalid_request_error"
"""OpenAI's error type for anything wrong with the request itself (400, 401, 404, 413)."""


@dataclass
class ApiError(Exception):
    """A refusal with its HTTP status and OpenAI error fields; `headers` (e.g. Retry-After) go on the response."""

    status: int
    message: str
    type: str = INVALID_REQUEST
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        super().__init__(self.message)

    def body(self) -> dict:
        """The JSON body OpenAI sends for an error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    """400: a field is missing, of the wrong type or out of range."""
    return ApiError(400, message, param=param, code=code)
