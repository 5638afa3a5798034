"""MLflow-style errors: one exception type, one status table, one answer for every failed request.

MlflowError itself needs nothing from Django, so pure modules (the search grammar) can raise it.
"""

import logging

logger = logging.getLogger("mlflow_sh.errors")

# MLflow's ERROR_CODE_TO_HTTP_STATUS; any other code is a 500.
HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,  # 400, not 409: set_experiment() and register_model() expect it
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# MLflow 3.18 adds an error class and a SQLSTATE-like code to every handler error (see settings).
ERROR_CLASS = {"RESOURCE_DOES_NOT_EXIST": "RESOURCE_NOT_FOUND"}


class MlflowError(Exception):
    """An error the client sees as {"error_code", "message"} with MLflow's HTTP status."""

    def __init__(self, message: str, error_code: str = "INTERNAL_ERROR", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status or HTTP_STATUS.get(error_code, 500)

    @classmethod
    def invalid(cls, message: str) -> "MlflowError":
        return cls(message, "INVALID_PARAMETER_VALUE")

    @classmethod
    def not_found(cls, message: str) -> "MlflowError":
        return cls(message, "RESOURCE_DOES_NOT_EXIST")

    @classmethod
    def exists(cls, message: str) -> "MlflowError":
        return cls(message, "RESOURCE_ALREADY_EXISTS")

    def body(self, *, extra_keys: bool) -> dict:
        body = {"error_code": self.error_code, "message": self.message}
        if extra_keys:
            body["sqlstate"] = "KAM00"
            body["error_class"] = ERROR_CLASS.get(self.error_code, self.error_code)
        return body


class HttpAnswer(Exception):
    """A response given as it is, not as MLflow JSON: 401 and 403 carry text bodies, as in MLflow's auth app."""

    def __init__(self, response):
        super().__init__(response.status_code)
        self.response = response


def as_mlflow_error(exc: Exception) -> MlflowError:
    from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
    from django.db import DataError, IntegrityError, OperationalError
    from rest_framework import exceptions as drf_exceptions

    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, ObjectDoesNotExist):  # a safety net: selectors raise MLflow's own wording
        return MlflowError.not_found(str(exc) or "Resource does not exist")
    if isinstance(exc, DataError | IntegrityError):  # e.g. a value longer than its column: the caller's mistake
        return MlflowError(f"The request could not be stored: {str(exc).splitlines()[0]}", "BAD_REQUEST")
    if isinstance(exc, OperationalError):  # the database is unreachable or gave up: worth a retry
        return MlflowError("The database is temporarily unavailable.", "TEMPORARILY_UNAVAILABLE")
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        return MlflowError.invalid(f"The request body exceeds the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MlflowError(str(exc.detail), "BAD_REQUEST", status=405)
    if isinstance(exc, drf_exceptions.NotFound):
        return MlflowError(str(exc.detail), "ENDPOINT_NOT_FOUND")
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return MlflowError(str(exc.detail), "UNAUTHENTICATED")
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return MlflowError(str(exc.detail), "PERMISSION_DENIED")
    if isinstance(exc, drf_exceptions.ValidationError):
        return MlflowError.invalid(_flatten_detail(exc.detail))
    if isinstance(exc, drf_exceptions.APIException):
        return MlflowError(str(exc.detail), "BAD_REQUEST", status=exc.status_code)
    return MlflowError("An internal error occurred.", "INTERNAL_ERROR")


def _flatten_detail(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten_detail(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten_detail(item) for item in detail)
    return str(detail)


def error_response(err: MlflowError):
    from django.conf import settings

    from mlflow_sh.wire import json_response

    return json_response(err.body(extra_keys=settings.MLFLOW_ERROR_EXTRA_KEYS), status=err.status)


def error_answer(exc: Exception, request):
    """The response to a failed request: an HttpAnswer as it is, anything else as MLflow JSON (500s logged).

    Nothing to roll back here: an RPC that writes runs its handler in an atomic block (RpcView._handle), which
    the exception has already left, rolling back."""
    if isinstance(exc, HttpAnswer):
        return exc.response
    err = as_mlflow_error(exc)
    if err.status >= 500:
        logger.error("%s %s failed", getattr(request, "method", "?"), getattr(request, "path", "?"), exc_info=exc)
    return error_response(err)


def mlflow_exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"], for the DRF views (GraphQL): the same answers as the RPC views."""
    return error_answer(exc, context.get("request"))
