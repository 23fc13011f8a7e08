"""``sora-mock record``: send a few corpus requests to a server and save its answers as fixtures.

The guard's recorder (:class:`AnswerRecorder`) keeps each answer it forwards the same way, one
corpus document per answer.

The selection is checked against the live smoke run's budget before anything is sent:
``SORA_LIVE_MAX_CREATES`` (default 1) requests a conforming server would answer 200 (billable
creates), ``SORA_LIVE_MAX_REQUESTS`` (default 40) requests in all. The bearer token comes from
``SORA_API_KEY`` and never reaches the file: headers keep the ``{token}`` placeholder, and any
copy of the token in an answer (when it is at least :data:`MIN_SECRET_LENGTH` characters long,
as the mock's journal has it), like the ``sig=`` value of a signed URL, is scrubbed.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from ..contract.http import MIN_SECRET_LENGTH
from ..contract.rules import RuleError, check_request, decode_body
from ..contract.spec import load_contract
from ..mock.fixtures import TOKEN_PLACEHOLDER, Case, iter_cases, kept_headers
from .budget import Budget, BudgetError
from .config import public_url
from .files import json_bytes, write_atomically

__all__ = [
    "DEFAULT_CASES",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "AnswerRecorder",
    "Budget",
    "Forwarded",
    "is_billable",
    "is_secret",
    "record",
    "record_cases",
    "scrub",
    "scrub_bytes",
    "token_pattern",
]

DEFAULT_CASES = ("url-form",)
REDACTED = "[redacted]"
_SIG = re.compile(r"(?i)(\bsig(?:=|%3D))[^&\"'\s#]*")
_SIG_BYTES = re.compile(rb"(?i)(\bsig(?:=|%3D))[^&\"'\s#]*")


def is_billable(item: Case) -> bool:
    """Whether a conforming server would answer ``item`` with 200 (a paid create)."""
    auth = item.request.get("headers", {}).get("Authorization", "")
    if auth != f"Bearer {TOKEN_PLACEHOLDER}" or item.method != "POST" or item.path != "/sora/v1/characters":
        return False
    try:
        return check_request(decode_body(item.content()), load_contract()) is None
    except RuleError:
        return False


def is_secret(token: str) -> bool:
    """Whether ``token`` is long enough to be scrubbed wherever it appears (:data:`MIN_SECRET_LENGTH`)."""
    return len(token) >= MIN_SECRET_LENGTH


_MIN_BASE64 = 8
"""Characters a base64 core of the token must have to be scrubbed (a shorter one could be any text)."""


def _char_forms(char: str) -> list[str]:
    """Ways a text may spell one character of the token: as is, percent-encoded (each UTF-8 byte, any
    letter case), as a JSON ``\\u`` escape, as an HTML character reference."""
    code = ord(char)
    utf8 = char.encode("utf-8")
    forms = [
        re.escape(char),
        "(?i:" + re.escape("".join(f"%{b:02x}" for b in utf8)) + ")",
        "(?i:" + re.escape("".join(f"%25{b:02x}" for b in utf8)) + ")",  # percent-encoded twice
    ]
    if char == " ":
        forms.append(re.escape("+"))  # form encoding
    if code < 0x10000:
        forms.append(r"(?i:\\u" + f"{code:04x})")
    else:  # a JSON surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(r"(?i:\\u" + f"{high:04x}" + r"\\u" + f"{low:04x})")
    forms.append(f"(?i:&#x0*{code:x};)|&#0*{code};")
    if char == "/":
        forms.append(re.escape("\\/"))  # JSON may escape a slash
    return forms


def _base64_cores(token: str) -> list[str]:
    """The parts of the token's base64 (standard and URL-safe) that do not depend on the bytes around it,
    for each of the three alignments it may have in a longer encoded text."""
    data = token.encode("utf-8")
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        start, end = 4 * -(-offset // 3), 4 * ((offset + len(data)) // 3)
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64:
            cores.update((core, core.replace("+", "-").replace("/", "_")))
    return sorted(cores, key=len, reverse=True)


@functools.lru_cache(maxsize=8)
def token_pattern(token: str) -> re.Pattern[str]:
    """Every common spelling of ``token`` in a text: as is, percent-encoded (wholly or in part, once or
    twice, any case), JSON-escaped, HTML character references, UTF-16 read as text (a NUL beside each
    character), hex, base64."""
    spelled = "\x00?".join("(?:" + "|".join(_char_forms(char)) + ")" for char in token)
    hexed = "(?i:" + token.encode("utf-8").hex() + ")"
    return re.compile("|".join([spelled, hexed, *map(re.escape, _base64_cores(token))]))


@functools.lru_cache(maxsize=8)
def _token_pattern_bytes(token: str) -> re.Pattern[bytes]:
    """:func:`token_pattern` over UTF-8 bytes, and the token in UTF-16 (either byte order)."""
    utf16 = [re.escape(token.encode(codec)) for codec in ("utf-16-le", "utf-16-be")]
    return re.compile(b"|".join([*utf16, token_pattern(token).pattern.encode("utf-8")]))


def scrub(value: Any, token: str) -> Any:
    """``value`` with every ``sig=`` value, and each copy of ``token`` if :func:`is_secret` (in any of the
    spellings of :func:`token_pattern`), as ``[redacted]``."""
    if isinstance(value, str):
        if is_secret(token):
            value = token_pattern(token).sub(REDACTED, value)
        return _SIG.sub(lambda m: m.group(1) + REDACTED, value)
    if isinstance(value, Mapping):
        return {scrub(k, token): scrub(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, token) for v in value]
    return value


def scrub_bytes(raw: bytes, token: str) -> bytes:
    """:func:`scrub` for a body that is not text: done on the bytes, before they are encoded (e.g. as base64)."""
    if is_secret(token):
        raw = _token_pattern_bytes(token).sub(REDACTED.encode("ascii"), raw)
    return _SIG_BYTES.sub(lambda m: m.group(1) + REDACTED.encode("ascii"), raw)


def _select(names: Sequence[str]) -> list[Case]:
    known = {item.name: item for item in iter_cases()}
    chosen = []
    for name in names:
        if name not in known:
            raise click.BadParameter(f"no corpus case {name!r}; choose from {', '.join(known)}", param_hint="--case")
        if known[name].fault is not None:
            raise click.BadParameter(
                f"{name!r} needs an injected fault and cannot be asked of a server", param_hint="--case"
            )
        chosen.append(known[name])
    return chosen


def record_cases(
    cases: Sequence[Case], base_url: str, token: str, *, timeout: float = 60.0, budget: Budget | None = None
) -> dict[str, Any]:
    """Send each case to ``base_url`` and return a corpus-format document of the scrubbed answers.

    Requests come from the corpus, so they hold the ``{token}`` placeholder, never the token.
    """
    budget = budget or Budget()
    creates = sum(1 for item in cases if is_billable(item))
    if creates > budget.max_creates:
        raise click.UsageError(
            f"the selection holds {creates} create(s) a conforming server would bill, over "
            f"SORA_LIVE_MAX_CREATES={budget.max_creates}; nothing was sent"
        )
    if len(cases) > budget.max_requests:
        raise click.UsageError(
            f"the selection holds {len(cases)} requests, over SORA_LIVE_MAX_REQUESTS={budget.max_requests}; "
            "nothing was sent"
        )
    recorded = []
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        for item in cases:
            started = time.perf_counter()
            answer: dict[str, Any]
            try:
                response = client.request(
                    item.method, item.path, headers=item.headers(token), content=item.content() or None
                )
            except httpx.HTTPError as exc:
                answer = {"status": None, "headers": {}, "body": None, "transport_error": type(exc).__name__}
            else:
                try:
                    body: Any = response.json() if response.content else None
                except ValueError:
                    body = {
                        "text": scrub(response.text, token)[:2000]
                    }  # scrubbed first: a cut never keeps half a token
                answer = {"status": response.status_code, "headers": kept_headers(response.headers), "body": body}
            answer = scrub(answer, token)
            answer["elapsed_ms"] = round((time.perf_counter() - started) * 1000)
            leaked = is_secret(token) and token in json.dumps(answer, ensure_ascii=False)
            if leaked:  # belt and braces: never write the token
                raise click.ClickException("the token survived scrubbing; nothing was written")
            recorded.append(
                {
                    "name": item.name,
                    "description": item.description,
                    "fault": None,
                    "request": dict(item.request),
                    "response": answer,
                }
            )
    document = {
        "description": f"answers recorded from {public_url(base_url)}; token and sig= values scrubbed",
        "recorded_from": public_url(base_url),
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cases": recorded,
    }
    return document


@click.command()
@click.option(
    "--base-url",
    envvar="SORA_BASE_URL",
    required=True,
    help="Server to record from, e.g. http://127.0.0.1:8000 (env SORA_BASE_URL). Required: no default.",
)
@click.option(
    "--case",
    "case_names",
    multiple=True,
    help=f"Corpus case to send (repeatable; see fixtures/*.json). Default: {', '.join(DEFAULT_CASES)}.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="File to write. Default: fixtures/recorded/<host>-<UTC time>.json under the current folder.",
)
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds per request.")
def record(base_url: str, case_names: tuple[str, ...], out: Path | None, timeout: float) -> None:
    """Send a few corpus requests to a server and save its answers as fixtures.

    The bearer token comes from SORA_API_KEY. Creates a conforming server would bill are capped by
    SORA_LIVE_MAX_CREATES (default 1) and all requests by SORA_LIVE_MAX_REQUESTS (default 40),
    checked before anything is sent.
    """
    token = os.environ.get("SORA_API_KEY", "").strip()
    if not token:
        raise click.UsageError("SORA_API_KEY is not set: export the server's bearer token; nothing was sent")
    if not base_url.startswith(("http://", "https://")):
        raise click.BadParameter(f"must be an http(s) URL, got {public_url(base_url)!r}", param_hint="--base-url")
    cases = _select(case_names or DEFAULT_CASES)
    try:
        budget = Budget.from_env()
    except BudgetError as exc:
        raise click.UsageError(f"{exc}; nothing was sent") from None
    document = record_cases(cases, base_url, token, timeout=timeout, budget=budget)
    if out is None:
        host = (urlsplit(base_url).hostname or "server").replace(":", "_")
        stamp = document["recorded_at"].replace("-", "").replace(":", "")
        out = Path("fixtures") / "recorded" / f"{host}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for item in document["cases"]:
        response = item["response"]
        got = response["status"] if response["status"] is not None else response.get("transport_error")
        click.echo(f"{item['name']}: {got} ({response['elapsed_ms']} ms)")
    click.echo(f"wrote {out}")


@dataclass(frozen=True)
class Forwarded:
    """One exchange the guard forwarded, as its recorder keeps it (the token only to scrub it)."""

    method: str
    path: str
    authorization: bool
    """Whether the request had an ``Authorization`` header (kept as the ``{token}`` placeholder)."""
    content_type: str | None
    raw: bytes
    """The request body as sent."""
    token: str
    status: int
    answer_headers: Mapping[str, str]
    content: bytes | None
    """The decoded answer body; ``None``: it could not be decoded."""
    elapsed: float


class AnswerRecorder:
    """Writes each answer the guard forwards as a one-case corpus document (see :mod:`mock_server.mock.fixtures`)."""

    def __init__(self, directory: Path, upstream: str) -> None:
        self.directory = directory
        self.upstream = upstream

    def save(self, forwarded: Forwarded) -> None:
        """Write one document (atomically; never one that holds the token)."""
        token = forwarded.token
        sent, description = _sent_request(forwarded)
        response = {"status": forwarded.status, "headers": kept_headers(forwarded.answer_headers)}
        response["body"] = _answer_body(forwarded.content, token)
        stamp = datetime.now(UTC)
        item = {
            "name": f"guard-{stamp.strftime('%H%M%S')}-{uuid.uuid4().hex[:8]}",
            "description": description,
            "fault": None,
            "request": scrub(sent, token),
            "response": {**scrub(response, token), "elapsed_ms": round(forwarded.elapsed * 1000)},
        }
        document = {
            "description": f"an answer forwarded by sora-mock guard from {self.upstream}; token, sig= scrubbed",
            "recorded_from": self.upstream,
            "recorded_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cases": [item],
        }
        data = json_bytes(document, indent=2) + b"\n"
        if is_secret(token) and token.encode("utf-8") in data:  # belt and braces: never write the token
            raise ValueError("the token survived scrubbing")
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(self.directory / f"{item['name']}.json", data)


def _sent_request(forwarded: Forwarded) -> tuple[dict[str, Any], str]:
    """The recorded request (not yet scrubbed) and the case's description."""
    kept = {}
    if forwarded.authorization:
        kept["Authorization"] = f"Bearer {TOKEN_PLACEHOLDER}" if forwarded.token else "[redacted]"
    if forwarded.content_type is not None:
        kept["Content-Type"] = forwarded.content_type
    sent: dict[str, Any] = {"method": forwarded.method, "path": forwarded.path, "headers": kept}
    description = f"{forwarded.method} {forwarded.path} forwarded by sora-mock guard"
    raw, token = forwarded.raw, forwarded.token
    if raw:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # scrubbed as bytes: base64 would hide the token from any later check
            scrubbed = scrub_bytes(raw, token)
            if is_secret(token) and token.encode("utf-8") in scrubbed:
                description += " (its binary body was not kept: the token could not be scrubbed from it)"
            else:
                sent["base64"] = base64.b64encode(scrubbed).decode("ascii")
        else:
            sent.update(_as_json_or_text(text))
    return sent, description


def _answer_body(content: bytes | None, token: str) -> Any:
    """The recorded answer body: JSON as it is, text scrubbed and cut, ``None`` for an empty one."""
    if content is None:
        return {"text": "[not kept: the answer could not be decoded]"}
    if not content:
        return None
    try:
        decoded = _as_json_or_text(content.decode("utf-8"))
    except UnicodeDecodeError:
        decoded = {"text": content.decode("utf-8", "replace")}
    # scrubbed before the cut, so a cut never keeps the first characters of a token
    return decoded["json"] if "json" in decoded else {"text": scrub(decoded["text"], token)[:2000]}


def _as_json_or_text(text: str) -> dict[str, Any]:
    """``{"json": data}`` when ``text`` is JSON every UTF-8 writer can keep, else ``{"text": text}``."""
    try:
        data = json.loads(text)
        json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError):  # not JSON, 1e400, too deep, a lone surrogate
        return {"text": text}
    return {"json": data}
