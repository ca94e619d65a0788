"""Application errors: each maps to the reference's error envelope (code, status, type)."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error a client may see. ``message`` is user-facing; never a path or a trace."""

    status = 500
    code = "INTERNAL_ERROR"
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        system_message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system_message = system_message or message
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(AppError):
    status = 422
    code = "VALIDATION_ERROR"
    type = "validation_error"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        """A failure of one named field, listed in ``details.errors``."""
        return cls(
            f"Invalid value for {field}: {message}",
            details={"errors": [{"field": field, "message": message}]},
        )


class IdempotencyKeyReused(AppError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    type = "validation_error"


class AuthenticationRequired(AppError):
    status = 401
    code = "AUTHENTICATION_REQUIRED"
    type = "authentication_error"


class InvalidApiKey(AppError):
    status = 401
    code = "INVALID_API_KEY"
    type = "authentication_error"


class OrganizationAccessDenied(AppError):
    status = 403
    code = "ORGANIZATION_ACCESS_DENIED"
    type = "authorization_error"


class InsufficientPermissions(AppError):
    """The caller may see the object but not do this to it (a reader deleting a track)."""

    status = 403
    code = "INSUFFICIENT_PERMISSIONS"
    type = "authorization_error"


class SignatureInvalid(AppError):
    status = 403
    code = "INVALID_SIGNATURE"
    type = "authorization_error"


class NotFound(AppError):
    status = 404
    code = "RESOURCE_NOT_FOUND"
    type = "not_found"


class Conflict(AppError):
    status = 409
    code = "CONFLICT"
    type = "conflict"


class ServiceUnavailable(AppError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    type = "server_error"


class RateLimited(AppError):
    """Too many requests; ``headers`` carries ``Retry-After``."""

    status = 429
    code = "RATE_LIMITED"
    type = "rate_limit_error"


class QuotaExceeded(AppError):
    """The organization already has as many queued and running jobs as it may."""

    status = 429
    code = "QUOTA_EXCEEDED"
    type = "rate_limit_error"
