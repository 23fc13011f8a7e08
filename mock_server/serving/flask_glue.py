"""Moved to :mod:`mock_server.web` (the mock imports it, so it sits below the mock); kept as an alias."""

from __future__ import annotations

from ..web import error_response, http_error_response, read_capped, violation_response

__all__ = ["error_response", "http_error_response", "read_capped", "violation_response"]
