"""``OPTIONS`` on the endpoint: 204 with ``Allow``, no HTML, not journaled."""

from __future__ import annotations

import requests
from flask.testing import FlaskClient

from mock_server import SoraServer

PATH = "/sora/v1/characters"


def test_options_is_204_with_allow_and_no_body(client: FlaskClient) -> None:
    response = client.options(PATH)
    assert response.status_code == 204
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert "Content-Type" not in response.headers
    assert response.data == b""
    assert client.get("/__mock/requests").get_json() == []


def test_options_over_http_and_the_405_agree_on_allow() -> None:
    with SoraServer() as server:
        options = requests.options(server.url + PATH, timeout=10)
        refused = requests.get(server.url + PATH, timeout=10)
    assert options.status_code == 204 and options.content == b""
    assert "html" not in options.headers.get("Content-Type", "")
    assert options.headers["Allow"] == refused.headers["Allow"] == "OPTIONS, POST"
    assert refused.status_code == 405
