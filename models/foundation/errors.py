"""Typed API errors: each carries its HTTP status and a snake_case code.

Domain functions raise these; the base handler renders every one in the contract's shape
`{"error": {"code", "message", "fields"}}`, so no handler chooses a status by hand.
"""

from typing import Any, Self


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = fields or {}
        if code:
            self.code = code
        self.headers = headers or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class MalformedRequest(ApiError):
    status, code, message = 400, "malformed_request", "The request body is not valid JSON."


class UnknownHost(ApiError):
    status, code, message = (
        400,
        "unknown_host",
        ("This server does not answer to that host name (the Host header); see ALLOWED_HOSTS."),
    )


class NotAuthenticated(ApiError):
    status, code, message = 401, "not_authenticated", "Authentication credentials were not provided or are invalid."


class PermissionDenied(ApiError):
    status, code, message = 403, "permission_denied", "Your role may not perform this action."


class NotFound(ApiError):
    status, code, message = 404, "not_found", "Not found."


class MethodNotAllowed(ApiError):
    status, code, message = 405, "method_not_allowed", "This method is not allowed on this path."


class Conflict(ApiError):
    status, code, message = 409, "conflict", "The request conflicts with the current state."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    message = "This action is not allowed in the request's current status."


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_error", "Some fields are not valid."

    @classmethod
    def on(cls, field: str, message: str) -> Self:
        return cls(message, fields={field: [message]})


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "Too many requests; try again later."


class UpstreamUnavailable(ApiError):
    status, code, message = 502, "payment_provider_unavailable", "The payment provider could not be reached."


class ServiceUnavailable(ApiError):
    status, code, message = 503, "service_unavailable", "A dependency is unavailable."
