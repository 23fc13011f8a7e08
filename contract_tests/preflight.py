"""Before the contract suite sends its hundreds of requests: is the target there, and is it set up right?

Three requests at most, each answering one question, so a wrong setup stops the run once with one
message saying what to change, instead of the same failure on every test:

- is anything listening at the target (else ``UNREACHABLE``, exit 3, nothing was checked);
- is ``TARGET`` the base URL (a path ending in ``/sora/v1`` or the endpoint gets a hint; a 404 to
  the endpoint too);
- does the token setup fit the server: the configured token must be accepted (a token-pinned
  mock and no ``SORA_API_KEY``, or a wrong one, stop with exit 2), and with ``SORA_API_KEY`` set a
  random token must be refused (a server accepting any token fails once, exit 1: a mock started
  without a token, or a server that does not check tokens).

The exit statuses are those of ``python -m contract_tests.live``: 1 a check failed, 2 the setup is
wrong (nothing judged), 3 the target cannot be reached.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests

from mock_server.contract.spec import ENDPOINT_PATH

from .target import DEFAULT_SEED, VIDEO, Target
from .verdicts import send_until_judged

__all__ = [
    "EXIT_FAILED",
    "EXIT_SETUP",
    "EXIT_UNREACHABLE",
    "Problem",
    "base_url_hint",
    "check_target",
    "contract_seed",
    "describe",
    "reachable",
]

EXIT_FAILED = 1
EXIT_SETUP = 2
EXIT_UNREACHABLE = 3
_TIMEOUT = (5.0, 60.0)
_MOCK_TOKEN_HINT = "for `make mock`: the TOKEN or SORA_MOCK_TOKEN it was started with"


@dataclass(frozen=True)
class Problem:
    """Why the run stops before testing: a message for a human and the exit status."""

    message: str
    exit_code: int


@functools.cache
def contract_seed(raw: str | None = None) -> int:
    """The fuzz seed of this run: ``SORA_CONTRACT_SEED`` (``make contract FUZZ_SEED=N``), ``random``, or the default.

    Cached, so every part of one run (the summary and the tests) uses the same number.
    """
    text = (os.environ.get("SORA_CONTRACT_SEED", "") if raw is None else raw).strip()
    if not text:
        return DEFAULT_SEED
    if text.lower() == "random":
        return secrets.randbelow(2**32)
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"FUZZ_SEED (SORA_CONTRACT_SEED) must be an integer or 'random', got {text!r}") from None


def describe(target: Target, seed: int, env: Mapping[str, str] | None = None) -> str:
    """One line naming what this run tests, with which profile, token and seed."""
    env = os.environ if env is None else env
    profile = "strict" if target.strict else "lenient"
    if target.base_url is None:
        where = "the in-process mock (TARGET / SORA_CONTRACT_TARGET is empty: no server is contacted)"
    else:
        where = f"POST {target.base_url}{ENDPOINT_PATH}"
    if env.get("SORA_API_KEY", "").strip():
        token = "SORA_API_KEY"
    elif target.base_url is None:
        token = "the in-process mock's own"
    else:
        token = "a placeholder (SORA_API_KEY unset: wrong-token checks skipped)"
    pace = f", at most {target.rate:g} requests/s (RATE)" if target.rate else ""
    return f"contract: testing {where}, {profile} profile, token: {token}, fuzz seed {seed}{pace}"


def base_url_hint(url: str) -> str | None:
    """A hint when ``url`` looks like the endpoint (or its ``/sora/v1`` prefix) instead of the base URL."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    marker = path.find("/sora/v1")
    if marker < 0:
        return None
    base = urlunsplit((parts.scheme, parts.netloc, path[:marker], "", "")).rstrip("/")
    return (
        f"TARGET is the server's base URL, without the endpoint path: the suite adds {ENDPOINT_PATH} itself; "
        f"use TARGET={base}"
    )


def reachable(base_url: str, timeout: float = 5.0) -> str | None:
    """``None`` when a TCP connection to ``base_url`` opens, else why not."""
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot connect to {parts.hostname}:{port} ({type(exc).__name__}: {exc})"


def _unreachable(target: Target, why: str) -> Problem:
    return Problem(
        f"UNREACHABLE: {why}; nothing was checked. Is the server up, and is TARGET={target.base_url} right?",
        EXIT_UNREACHABLE,
    )


def check_target(target: Target, session: requests.Session | None = None) -> Problem | None:
    """What stops the run before testing ``target``, or ``None`` (an in-process target always passes)."""
    if target.base_url is None:
        return None
    hint = base_url_hint(target.base_url)
    if hint is not None:
        return Problem(hint, EXIT_SETUP)
    http = session or requests.Session()
    answer = _post_create(http, target, target.token)
    if isinstance(answer, Problem):
        return answer
    problem = _setup_problem(target, answer.status_code)
    if problem is not None or not target.token_known:
        return problem
    wrong = _post_create(http, target, "sk-invalid-" + secrets.token_hex(16))  # never derived from the real token
    if isinstance(wrong, Problem):
        return wrong
    return _any_token_problem(wrong.status_code)


def _post_create(http: requests.Session, target: Target, token: str) -> requests.Response | Problem:
    """A conforming create sent with ``token``, throttled or transient answers waited out; or why it got none."""
    url = f"{target.base_url}{ENDPOINT_PATH}"
    body = {"url": VIDEO, "timestamps": "1,3"}

    def once() -> requests.Response:
        return http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=_TIMEOUT)

    try:  # a limiter's 429 or a gateway's hiccup is waited out here too: the setup is judged on a real answer
        sent = send_until_judged(once, lambda answer: (answer.status_code, answer.headers, answer.content))
        response: requests.Response = sent.response
        return response
    except requests.ConnectionError as exc:
        why = reachable(target.base_url or "")
        return _unreachable(target, why or f"the connection failed ({type(exc).__name__})")
    except requests.Timeout:
        return _unreachable(target, f"no answer from {url} within {_TIMEOUT[1]:g} s")


def _setup_problem(target: Target, status: int) -> Problem | None:
    """What a wrong path (404) or a refused token (401/403) on the conforming create says about the setup."""
    if status == 404:
        return Problem(
            f"POST {target.base_url}{ENDPOINT_PATH} answered 404: TARGET must be the base URL the endpoint path is "
            f"appended to (e.g. http://127.0.0.1:8000), and the server must serve {ENDPOINT_PATH}",
            EXIT_SETUP,
        )
    if status in (401, 403) and not target.token_known:
        return Problem(
            f"the server refused the suite's placeholder token (HTTP {status}): it accepts only its "
            f"own token. Export that token as SORA_API_KEY ({_MOCK_TOKEN_HINT}), or start the mock without one",
            EXIT_SETUP,
        )
    if status in (401, 403):
        return Problem(
            f"the server refused SORA_API_KEY (HTTP {status}): it is not the server's token. Export "
            f"the right one ({_MOCK_TOKEN_HINT}), or restart the mock with SORA_MOCK_TOKEN set to SORA_API_KEY",
            EXIT_SETUP,
        )
    return None


def _any_token_problem(status: int) -> Problem | None:
    """A 2xx to a random bearer token while SORA_API_KEY is set: the wrong-token checks cannot pass."""
    if 200 <= status < 300:
        return Problem(
            f"SORA_API_KEY is set, so the suite checks that other tokens are refused, but the server accepted a "
            f"random bearer token (HTTP {status}). A mock started without a token accepts any: pin it "
            f'(SORA_MOCK_TOKEN="$SORA_API_KEY" make mock), or unset SORA_API_KEY to skip the wrong-token checks. '
            f"A server meant to check tokens breaks the contract here (sora_auth_enforced)",
            EXIT_FAILED,
        )
    return None
