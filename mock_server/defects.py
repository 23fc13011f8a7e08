"""Named, deliberate ways of breaking the contract, to prove the suites catch them.

Each defect is one realistic bug. ``DEFECTS`` maps its name to a one-line description.
"""

from __future__ import annotations

__all__ = ["DEFECTS"]

DEFECTS: dict[str, str] = {}
