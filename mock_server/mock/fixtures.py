"""The canonical JSON examples under ``fixtures/``: the generator that wrote them (the loader: :mod:`.corpus`).

Each corpus file holds cases, one request with the answer the mock gives it::

    {"name": "span-too-wide", "description": "...", "fault": null,
     "request": {"method": "POST", "path": "/sora/v1/characters",
                 "headers": {"Authorization": "Bearer {token}", ...}, "json": {...}},
     "response": {"status": 422, "headers": {"Content-Type": "application/json"}, "body": {...}}}

A request carries its body as ``json`` (an object to serialise), ``text`` (sent as UTF-8),
``base64`` (raw bytes) or ``repeat`` (``{"text": " ", "times": N}``, for oversized bodies).
``{token}`` in a header stands for the bearer token; no real token is ever stored.

The files are generated from the mock itself (``python -m mock_server.mock.fixtures --write``) and a
test checks they still match what the mock answers, so they cannot drift from it. The folder
sits beside this package in a checkout and inside it (``mock_server/fixtures_data``) in a wheel.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contract.rules import EXAMPLE_TASK_ID, EXAMPLE_VIDEO_URL
from ..contract.spec import ENDPOINT_PATH
from .compose import composition_of
from .corpus import CORPUS_FILES, TOKEN_PLACEHOLDER, Case, case, cases_from, fixtures_dir, iter_cases, load

__all__ = [
    "CORPUS_CLOCK",
    "CORPUS_FILES",
    "CORPUS_SEED",
    "TOKEN_PLACEHOLDER",
    "Case",
    "build_corpus",
    "case",
    "cases_from",
    "fixtures_dir",
    "iter_cases",
    "kept_headers",
    "load",
    "main",
    "stale_files",
    "write_corpus",
]

CORPUS_SEED = 20251120
"""Seed of the mock that answered the corpus requests."""
CORPUS_CLOCK = 1763600000.0
"""The fixed creation time (unix seconds, 2025-11-20T00:53:20Z) of the corpus characters."""
_CORPUS_TOKEN = "corpus-token"
_KEPT_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "Allow")
_AUTH = {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}", "Content-Type": "application/json"}


# --- generation -------------------------------------------------------------------------------


def _post(name: str, description: str, body: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "request": {"method": "POST", "path": ENDPOINT_PATH, "headers": dict(headers or _AUTH), "json": body},
    }


def _raw(name: str, description: str, key: str, value: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "request": {"method": "POST", "path": ENDPOINT_PATH, "headers": dict(_AUTH), key: value},
    }


def _valid_specs() -> list[dict[str, Any]]:
    return [
        _post("url-form", "A video URL and a 2 s window.", {"url": EXAMPLE_VIDEO_URL, "timestamps": "1,3"}),
        _post(
            "task-form", "A generated task id instead of a URL.", {"from_task": EXAMPLE_TASK_ID, "timestamps": "1,3"}
        ),
        _post("span-minimum", "The shortest window allowed: 1 s.", {"url": EXAMPLE_VIDEO_URL, "timestamps": "0,1"}),
        _post("span-maximum", "The longest window allowed: 3 s.", {"url": EXAMPLE_VIDEO_URL, "timestamps": "2,5"}),
        _post(
            "with-model",
            "A model name, as some relays take it: the seed defines no model, so it is ignored like any unknown field.",
            {"url": EXAMPLE_VIDEO_URL, "timestamps": "1,3", "model": "sora-2-character"},
        ),
        _post(
            "unknown-field-ignored",
            "Fields the contract does not define are ignored.",
            {"from_task": EXAMPLE_TASK_ID, "timestamps": "1,2", "note": "ignored"},
        ),
    ]


def _invalid_specs() -> list[dict[str, Any]]:
    url = {"url": EXAMPLE_VIDEO_URL}
    return [
        _post("span-too-wide", "A 4 s window (at most 3 s).", {**url, "timestamps": "1,5"}),
        _post("span-too-short", "A 0.5 s window (at least 1 s).", {**url, "timestamps": "1,1.5"}),
        _post("span-zero", "Start equals end.", {**url, "timestamps": "2,2"}),
        _post("span-reversed", "End before start.", {**url, "timestamps": "3,1"}),
        _post("timestamps-negative", "A negative start.", {**url, "timestamps": "-1,1"}),
        _post("timestamps-malformed", "Not 'start,end'.", {**url, "timestamps": "1-3"}),
        _post("timestamps-not-string", "A number instead of a string.", {**url, "timestamps": 13}),
        _post("timestamps-null", "null is a wrong type.", {**url, "timestamps": None}),
        _post("timestamps-missing", "timestamps is required.", {**url}),
        _post(
            "both-sources", "url and from_task together.", {**url, "from_task": EXAMPLE_TASK_ID, "timestamps": "1,3"}
        ),
        _post("no-source", "Neither url nor from_task.", {"timestamps": "1,3"}),
        _post("url-malformed", "Not an absolute http(s) URL.", {"url": "video.mp4", "timestamps": "1,3"}),
        _post("url-not-string", "A list instead of a string.", {"url": [EXAMPLE_VIDEO_URL], "timestamps": "1,3"}),
        _post("task-malformed", "Not shaped like video_<uuid>.", {"from_task": "task_123", "timestamps": "1,3"}),
        _post("body-not-object", "A JSON array instead of an object.", [{**url, "timestamps": "1,3"}]),
        _raw("body-not-json", "A body that is not JSON.", "text", '{"timestamps": "1,3", '),
        _raw("body-empty", "No body at all.", "text", ""),
        _raw("body-not-utf8", "Bytes that are not UTF-8.", "base64", base64.b64encode(b'{"url": "\xff"}').decode()),
        _post(
            "auth-missing",
            "No Authorization header.",
            {**url, "timestamps": "1,3"},
            {"Content-Type": "application/json"},
        ),
        _post(
            "auth-not-bearer",
            "A Basic scheme instead of Bearer.",
            {**url, "timestamps": "1,3"},
            {"Authorization": "Basic dXNlcjpwYXNz", "Content-Type": "application/json"},
        ),
        _post(
            "auth-wrong-token",
            "A bearer token the server does not accept.",
            {**url, "timestamps": "1,3"},
            {"Authorization": "Bearer not-the-right-token", "Content-Type": "application/json"},
        ),
    ]


def _error_specs() -> list[dict[str, Any]]:
    valid = {"url": EXAMPLE_VIDEO_URL, "timestamps": "1,3"}
    return [
        {
            "name": "not-found",
            "description": "A path the relay does not serve.",
            "request": {"method": "POST", "path": "/sora/v1/character", "headers": dict(_AUTH), "json": valid},
        },
        {
            "name": "method-not-allowed",
            "description": "GET on the create endpoint.",
            "request": {"method": "GET", "path": ENDPOINT_PATH, "headers": {"Authorization": _AUTH["Authorization"]}},
        },
        _raw("too-large", "A body over the 1 MiB limit.", "repeat", {"text": " ", "times": 1024 * 1024 + 1}),
        {
            **_post("rate-limited", "The relay under load: 429 with Retry-After.", valid),
            "fault": {"status": 429, "retry_after": 2},
        },
        {**_post("server-error", "An internal failure upstream.", valid), "fault": {"status": 500}},
        {**_post("unavailable", "The relay is temporarily unavailable.", valid), "fault": {"status": 503}},
    ]


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The answer headers the corpus keeps (``Allow`` sorted: servers list methods in any order)."""
    kept = {}
    for name in _KEPT_RESPONSE_HEADERS:
        value = headers.get(name)
        if value is not None:
            kept[name] = ", ".join(sorted(part.strip() for part in value.split(","))) if name == "Allow" else value
    return kept


def _answer(client: Any, state: Any, spec: dict[str, Any], kind: str) -> dict[str, Any]:
    from .faults import Fault

    item = Case.from_json({**spec, "response": {}}, kind)
    if spec.get("fault") is not None:
        fault, times = Fault.from_json(spec["fault"])
        state.push_fault(fault, times)
    answer = client.open(item.path, method=item.method, headers=item.headers(_CORPUS_TOKEN), data=item.content())
    headers = kept_headers(answer.headers)
    body = json.loads(answer.get_data()) if answer.get_data() else None
    return {
        "name": spec["name"],
        "description": spec["description"],
        "fault": spec.get("fault"),
        "request": spec["request"],
        "response": {"status": answer.status_code, "headers": headers, "body": body},
    }


def build_corpus(count: int = 5) -> dict[str, Any]:
    """Ask a fresh mock (seed :data:`CORPUS_SEED`, clock :data:`CORPUS_CLOCK`) every corpus request.

    Returns ``{file name: document}`` for :data:`CORPUS_FILES`. ``count`` is the number of sample
    200 bodies in ``characters``.
    """
    from .app import create_app

    def clock() -> float:
        return CORPUS_CLOCK

    def fresh() -> Any:
        return create_app({"seed": CORPUS_SEED, "token": _CORPUS_TOKEN, "clock": clock})

    corpus: dict[str, Any] = {}
    for kind, specs in (("valid", _valid_specs()), ("invalid", _invalid_specs()), ("errors", _error_specs())):
        app = fresh()
        state = composition_of(app).state
        with app.test_client() as client:
            cases = [_answer(client, state, spec, kind) for spec in specs]
        corpus[kind] = {
            "description": f"{kind} requests to POST {ENDPOINT_PATH} and the mock's answers (seed {CORPUS_SEED}, "
            f"clock {CORPUS_CLOCK:.0f}); regenerate with python -m mock_server.mock.fixtures --write",
            "cases": cases,
        }
    app = fresh()
    state = composition_of(app).state
    with app.test_client() as client:
        spec = _valid_specs()[0]
        item = Case.from_json({**spec, "response": {}}, "valid")
        for _ in range(count):
            client.open(item.path, method=item.method, headers=item.headers(_CORPUS_TOKEN), data=item.content())
    corpus["characters"] = {
        "description": f"200 answers of a mock seeded with {CORPUS_SEED} at clock {CORPUS_CLOCK:.0f}, in order",
        "characters": state.characters(),
    }
    return corpus


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def write_corpus(directory: str | Path, corpus: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the corpus files into ``directory``; returns their paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in (corpus or build_corpus()).items():
        path = target / f"{name}.json"
        path.write_text(_dumps(document), encoding="utf-8")
        written.append(path)
    return written


def stale_files(directory: str | Path | None = None, corpus: Mapping[str, Any] | None = None) -> list[str]:
    """Names of corpus files that differ from what the mock answers now (empty when in step)."""
    target = Path(directory) if directory is not None else fixtures_dir()
    stale = []
    for name, document in (corpus or build_corpus()).items():
        path = target / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != _dumps(document):
            stale.append(name)
    return stale


_DESCRIPTION = (
    "Check that the fixtures corpus (valid, invalid, errors, characters .json) is what the mock answers "
    "now, or rewrite it from the mock's answers with --write. Exit status: 0 in step (or written), "
    "1 when a file differs."
)


def _summary(corpus: Mapping[str, Any]) -> str:
    cases = sum(len(document.get("cases", ())) for document in corpus.values())
    characters = sum(len(document.get("characters", ())) for document in corpus.values())
    return f"{len(corpus)} files, {cases} cases and {characters} sample characters"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mock_server.mock.fixtures [--write] [--dir DIR]``: check (or rewrite) the corpus."""
    parser = argparse.ArgumentParser(prog="python -m mock_server.mock.fixtures", description=_DESCRIPTION)
    parser.add_argument("--write", action="store_true", help="rewrite the files from the mock's answers")
    parser.add_argument("--dir", default=None, help="corpus folder (default: the one the loader uses)")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else fixtures_dir()
    corpus = build_corpus()
    if args.write:
        for path in write_corpus(directory, corpus):
            print(f"wrote {path}")
        print(f"fixtures: wrote {_summary(corpus)} to {directory}")
        return 0
    stale = stale_files(directory, corpus)
    for name in stale:
        print(f"{directory / name}.json differs from the mock's answers; run with --write", file=sys.stderr)
    if not stale:
        print(f"fixtures: {directory} is in step with the mock ({_summary(corpus)})")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
