"""Contract suites for POST /sora/v1/characters."""

from __future__ import annotations
