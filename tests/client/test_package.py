"""The package's public API: every exported name resolves, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import mock_server


def test_every_public_name_resolves() -> None:
    for name in mock_server.__all__:
        assert getattr(mock_server, name) is not None, name
    assert set(mock_server.__all__) <= set(dir(mock_server))


def test_unknown_names_raise_attribute_error() -> None:
    try:
        mock_server.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_and_its_plugin_loads_no_web_stack() -> None:
    code = (
        "import sys, mock_server, mock_server.testing.plugin; "
        "print(sorted(m for m in ('flask', 'faker', 'httpx', 'respx', 'gunicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
