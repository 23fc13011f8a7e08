"""pytest plugin: ``sora_server`` and ``sora_respx`` fixtures and the ``sora`` marker.

Registered through the ``pytest11`` entry point, so installing the kit is enough. Override the
configuration fixtures in your ``conftest.py``:

- ``sora_server_config`` (session): settings of the default mock, a mapping of
  :class:`~mock_server.mock.config.MockConfig` field names. Defaults: any non-empty bearer token is
  accepted (like ``sora-mock serve``); only one when the fixtures' own setting pins it:
  ``SORA_FIXTURE_TOKEN`` in the environment, else the ``sora_token`` ini option. The server's
  ``SORA_MOCK_TOKEN`` is not read: exported for ``make mock``, it must not change the tests.
  Seed ``SORA_MOCK_SEED`` when set.
- ``sora_server_listen_address`` (session): ``(host, port)``, default ``("127.0.0.1", 0)``
  (a free port).
- ``sora_respx_base_urls`` (function): the base URLs ``sora_respx`` answers, default the relay's
  and ``SORA_BASE_URL`` when set.

``@pytest.mark.sora(seed=..., token=..., ...)`` gives one test a freshly built mock with those
settings (any ``MockConfig`` field) on top of ``sora_server_config``; ``token`` pins the only
token accepted. A misspelled setting is a usage error at collection, naming it and the known ones.

Contract coverage (:mod:`mock_server.mock.coverage`): each ``sora_server`` / ``sora_respx`` fixture hands
its mock's counts to the session when the test ends (before its reset). Like pytest-cov, the plugin
reports only when asked: ``--sora-coverage-report=term`` (ini ``sora_coverage_report``), or
``--sora-coverage`` / ``--sora-require``, end the terminal summary with ``sora contract coverage: K
of N outcomes met`` naming the others (``--sora-coverage-report=no`` keeps it out even then).
``--sora-coverage=PATH`` (ini ``sora_coverage``) writes the summed report as JSON;
``--sora-require=OUTCOME[,OUTCOME...]`` or ``all`` (ini ``sora_require``) fails the session, like
pytest-cov's ``--cov-fail-under``, when one of them was never met, and the session's last line
says so (``34 passed, 1 required sora outcome never met``). Under pytest-xdist
each worker hands its sums to the controller (``config.workeroutput``, as pytest-cov does), which
reports and judges their total.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # keep the plugin cheap to load in every pytest run of the environment
    from .respx_router import SoraRouter
    from .sora_server import SoraServer

__all__ = [
    "FIXTURE_TOKEN_ENV",
    "sora_respx",
    "sora_respx_base_urls",
    "sora_server",
    "sora_server_config",
    "sora_server_listen_address",
    "sora_server_session",
]

_MARKER_HELP = (
    "sora(**settings): configure the sora_server / sora_respx mock of this test with MockConfig "
    "fields, e.g. seed=7 (reproducible characters) or token='secret' (the only token accepted)."
)


FIXTURE_TOKEN_ENV = "SORA_FIXTURE_TOKEN"
"""The fixtures' own variable pinning their token (never the server CLI's ``SORA_MOCK_TOKEN``)."""


class _Coverage:
    """The outcome counts the fixtures handed in during one session, and what the session must meet."""

    def __init__(self, path: str | None, required: tuple[str, ...], report: str | None = None) -> None:
        self.path = path
        self.required = required
        self.report = report
        """``term``, ``no``, or ``None``: the section only with ``--sora-coverage`` / ``--sora-require``."""
        self.counts: dict[str, int] = {}
        self.statuses: dict[str, int | None] = {}
        self.missing: list[str] = []

    def add(self, report: dict[str, Any]) -> None:
        """Add one fixture's report (``MockState.coverage()``) to the session's sums."""
        for row in (*report["outcomes"], *report.get("stubbed", ())):
            self.counts[row["outcome"]] = self.counts.get(row["outcome"], 0) + int(row["seen"])
        for row in report.get("stubbed", ()):
            self.statuses.setdefault(row["outcome"], row.get("status"))

    def handed_out(self) -> dict[str, Any]:
        """The sums so far as plain data, for a pytest-xdist worker to send to the controller."""
        return {"counts": dict(self.counts), "statuses": dict(self.statuses)}

    def add_worker(self, sums: dict[str, Any]) -> None:
        """Add one pytest-xdist worker's sums (:meth:`handed_out`) to the session's."""
        for outcome, seen in sums.get("counts", {}).items():
            self.counts[outcome] = self.counts.get(outcome, 0) + int(seen)
        for outcome, status in sums.get("statuses", {}).items():
            self.statuses.setdefault(outcome, status)

    def summary(self) -> dict[str, Any]:
        from ..mock.coverage import coverage_report

        return coverage_report(self.counts, self.statuses)

    @property
    def shows_section(self) -> bool:
        """Whether the terminal summary gets the coverage section: asked for, never by default."""
        if self.report is None:
            return bool(self.required or self.path)
        return self.report == "term"


_COVERAGE = pytest.StashKey[_Coverage]()
_WORKER_KEY = "sora_coverage"
"""Where a pytest-xdist worker puts its sums in ``config.workeroutput``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sora", "sora mock contract coverage")
    group.addoption(
        "--sora-coverage",
        metavar="PATH",
        default=None,
        help="write the contract coverage of the sora_server / sora_respx fixtures, summed over the session, "
        "as JSON to PATH (ini: sora_coverage)",
    )
    group.addoption(
        "--sora-require",
        metavar="OUTCOME[,OUTCOME...]|all",
        default=None,
        help="fail the session when one of these endpoint outcomes (e.g. rate_limit_exceeded,dropped) was "
        "never met by the sora fixtures (ini: sora_require)",
    )
    group.addoption(
        "--sora-coverage-report",
        metavar="term|no",
        default=None,
        help="term: end the terminal summary with the contract coverage of the sora fixtures; no: never "
        "(default: only with --sora-coverage or --sora-require; ini: sora_coverage_report)",
    )
    parser.addini("sora_coverage", "like --sora-coverage: where to write the contract coverage JSON", default="")
    parser.addini("sora_coverage_report", "like --sora-coverage-report: term (or true) or no (or false)", default="")
    parser.addini("sora_require", "like --sora-require: outcomes the session must meet", default="")
    parser.addini(
        "sora_token",
        "the only bearer token the sora_server / sora_respx mock accepts (default: any non-empty token); "
        f"{FIXTURE_TOKEN_ENV} in the environment overrides it",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    path = config.getoption("sora_coverage", None) or str(config.getini("sora_coverage") or "").strip() or None
    wanted = config.getoption("sora_require", None) or str(config.getini("sora_require") or "").strip()
    required: tuple[str, ...] = ()
    if wanted:
        from ..mock.coverage import parse_required

        try:
            required = parse_required(wanted)
        except ValueError as exc:
            raise pytest.UsageError(f"--sora-require: {exc}") from None
    config.stash[_COVERAGE] = _Coverage(path, required, _report_choice(config))


_REPORT_CHOICES = {"term": "term", "true": "term", "yes": "term", "no": "no", "false": "no"}


def _report_choice(config: pytest.Config) -> str | None:
    """``--sora-coverage-report`` (else the ini option) as ``term`` / ``no``; ``None`` when neither is set."""
    given = config.getoption("sora_coverage_report", None)
    source = "--sora-coverage-report"
    if given is None:
        given, source = str(config.getini("sora_coverage_report") or ""), "sora_coverage_report"
    text = given.strip().lower()
    if not text:
        return None
    if text not in _REPORT_CHOICES:
        raise pytest.UsageError(f"{source}: expected term or no (ini: also true or false); got {given!r}")
    return _REPORT_CHOICES[text]


def _hand_in(request: pytest.FixtureRequest, report: dict[str, Any]) -> None:
    collected = request.config.stash.get(_COVERAGE, None)
    if collected is not None:
        collected.add(report)


def _is_xdist_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker (the controller sums, writes and judges)."""
    return hasattr(config, "workerinput")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker: hand this worker's sums to the controller (``config.workeroutput``)."""
    collected = session.config.stash.get(_COVERAGE, None)
    if collected is not None and _is_xdist_worker(session.config):
        session.config.workeroutput[_WORKER_KEY] = collected.handed_out()  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the pytest-xdist controller: add the sums of a worker that finished (a hook of xdist's, optional
    here so the plugin needs no xdist). A worker that crashed sent none."""
    collected = node.config.stash.get(_COVERAGE, None)
    sums = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if collected is not None and sums is not None:
        collected.add_worker(sums)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """After the tests (under pytest-xdist: after every worker finished): write ``--sora-coverage`` and fail
    the session on a missing ``--sora-require``."""
    result = yield
    collected = session.config.stash.get(_COVERAGE, None)
    if collected is None or session.config.option.collectonly or _is_xdist_worker(session.config):
        return result
    if collected.path:
        target = Path(collected.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(collected.summary(), indent=2) + "\n", encoding="utf-8")
    if collected.required:
        from ..mock.coverage import missing

        collected.missing = missing(collected.summary(), collected.required)
        if collected.missing:
            session.testsfailed += 1
            _count_in_the_last_line(session.config, collected.missing)
    return result


def _count_in_the_last_line(config: pytest.Config, never_met: list[str]) -> None:
    """Put the unmet requirement in pytest's last line after the pass count (``34 passed, 1 required sora
    outcome never met``), so a failed session never ends on a line that reads as all green."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    noun = "required sora outcome never met" if len(never_met) == 1 else "required sora outcomes never met"
    # One report per outcome, as pytest's own entries are (plugins read the reports of every category).
    reporter.stats.setdefault(noun, []).extend(
        pytest.TestReport(
            nodeid="--sora-require",
            location=("--sora-require", None, outcome),
            keywords={},
            outcome="failed",
            longrepr=f"required sora outcome never met: {outcome}",
            when="call",
        )
        for outcome in never_met
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collected = config.stash.get(_COVERAGE, None)
    if collected is None or _is_xdist_worker(config):
        return
    if collected.shows_section:
        _write_section(terminalreporter, collected)
    if collected.missing:
        terminalreporter.write_line(
            f"FAIL required sora outcomes never met: {', '.join(collected.missing)}", red=True, bold=True
        )


def _write_section(terminalreporter: Any, collected: _Coverage) -> None:
    summary = collected.summary()
    terminalreporter.write_sep("-", f"sora contract coverage: {summary['met']} of {summary['total']} outcomes met")
    never = [row["outcome"] for row in summary["outcomes"] if not row["seen"]]
    if never:
        terminalreporter.write_line(f"never met: {', '.join(never)}")
    for row in summary.get("stubbed", ()):
        terminalreporter.write_line(
            f"stubbed, outside the catalogue: {row['outcome']} ({row['status']}): seen {row['seen']}"
        )
    if collected.path:
        terminalreporter.write_line(f"coverage JSON written to {collected.path}")
    if collected.required and not collected.missing:
        terminalreporter.write_line(f"required sora outcomes met: {', '.join(collected.required)}", green=True)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a misspelled ``sora`` marker before anything runs: one line naming the key and the known ones."""
    known: list[str] | None = None
    for item in items:
        for marker in item.iter_markers("sora"):
            if marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.sora takes keyword arguments only, e.g. sora(seed=7)"
                )
            if known is None:
                from dataclasses import fields

                from ..mock.config import MockConfig

                known = sorted(f.name for f in fields(MockConfig))
            unknown = sorted(set(marker.kwargs) - set(known))
            if unknown:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown @pytest.mark.sora setting {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(known)}"
                )


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """Settings from every ``sora`` marker on the test, the closest one winning."""
    markers = list(request.node.iter_markers("sora"))
    if not markers:
        return None
    settings: dict[str, Any] = {}
    for marker in reversed(markers):  # iter_markers yields the closest first
        if marker.args:
            raise pytest.UsageError("@pytest.mark.sora takes keyword arguments only, e.g. sora(seed=7)")
        settings.update(marker.kwargs)
    return settings


@pytest.fixture(scope="session")
def sora_server_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Settings of the default mock (override in conftest.py): any non-empty bearer token unless pinned
    by ``SORA_FIXTURE_TOKEN`` or the ``sora_token`` ini option."""
    settings: dict[str, Any] = {}
    token = os.environ.get(FIXTURE_TOKEN_ENV, "").strip() or str(pytestconfig.getini("sora_token")).strip()
    if token:
        settings["token"] = token
    seed = os.environ.get("SORA_MOCK_SEED", "").strip()
    if seed:
        try:
            settings["seed"] = int(seed)
        except ValueError:
            raise pytest.UsageError(f"SORA_MOCK_SEED must be an integer; got {seed!r}") from None
    return settings


@pytest.fixture(scope="session")
def sora_server_listen_address() -> tuple[str, int]:
    """Where the session's mock listens; port 0 picks a free one."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def sora_server_session(
    sora_server_config: dict[str, Any], sora_server_listen_address: tuple[str, int]
) -> Iterator[SoraServer]:
    """The session's HTTP mock, started once; tests should use ``sora_server``."""
    from .sora_server import SoraServer

    host, port = sora_server_listen_address
    with SoraServer(sora_server_config, host=host, port=port) as server:
        yield server


@pytest.fixture
def sora_server(sora_server_session: SoraServer, request: pytest.FixtureRequest) -> Iterator[SoraServer]:
    """The mock over real HTTP on 127.0.0.1, state reset for this test.

    ``.url``, ``.token``, ``.requests``, ``.characters``, ``.reset()``, ``.fail_next(status,
    retry_after=None, times=1)``, ``.drop_next()``, ``.delay_next(ms)``, ``.stub(match, response,
    times)``, ``.stub_from(case_or_recording)``, ``.stubs``, ``.clear_stubs()``, ``.coverage``.
    """
    from .sora_server import build_config

    settings = _marker_settings(request)
    sora_server_session.reset()
    if settings is None:
        yield sora_server_session
        _hand_in(request, sora_server_session.coverage)
        sora_server_session.reset()
        return
    from ..mock.app import create_app

    app = create_app(build_config(sora_server_session.config, **settings))
    with sora_server_session.use(app):
        yield sora_server_session
        _hand_in(request, sora_server_session.coverage)
    sora_server_session.reset()


@pytest.fixture
def sora_respx_base_urls() -> tuple[str, ...]:
    """Base URLs whose endpoint ``sora_respx`` answers (override in conftest.py)."""
    from .respx_router import default_base_urls

    return default_base_urls()


@pytest.fixture
def sora_respx(
    sora_server_config: dict[str, Any], sora_respx_base_urls: tuple[str, ...], request: pytest.FixtureRequest
) -> Iterator[SoraRouter]:
    """An active respx router answering the relay's endpoint from the in-process mock.

    Works for sync and async httpx clients; other requests raise as not mocked.
    """
    from .respx_router import SoraRouter
    from .sora_server import build_config

    config = build_config(sora_server_config, **(_marker_settings(request) or {}))
    with SoraRouter(config, base_urls=sora_respx_base_urls) as router:
        yield router
        _hand_in(request, router.coverage)
