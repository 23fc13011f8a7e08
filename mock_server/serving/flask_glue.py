"""Moved to :mod:`mock_server.web` (the mock imports it, so it sits below the mock); kept as an alias."""

from __future__ import annotations

from ..web import (
    QueryError,
    error_response,
    http_error_response,
    query_arg,
    read_capped,
    refuse_web_pages,
    violation_response,
)

__all__ = [
    "QueryError",
    "error_response",
    "http_error_response",
    "query_arg",
    "read_capped",
    "refuse_web_pages",
    "violation_response",
]
