"""The one error type the emulator's handlers raise, rendered per gateway flavour."""

from __future__ import annotations


class ApiError(Exception):
    """An API error answered to the client, in OpenAI's ``{"error": {...}}`` shape by default.

    :param status: HTTP status code.
    :param message: human-readable message; never contains credentials.
    :param error_type: OpenAI ``type`` (``invalid_request_error``, ``server_error`` ...).
    :param param: the request parameter at fault, or None.
    :param code: OpenAI ``code``, or None (OpenAI leaves it null for most request errors).
    :param headers: extra response headers (``retry-after`` ...).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(kind: str, object_id: str, param: str) -> ApiError:
    return ApiError(404, f"No such {kind} object: {object_id}", param=param)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
