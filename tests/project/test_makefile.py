"""The Makefile a new user meets first: help, the venv checks, the Python check, and make mock's token."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from ..helpers import ROOT, free_port

VENV = Path(sys.prefix)

FAKE_PYTHON = """#!{python}
# A stand-in interpreter that reports Python {version}; "-m venv DIR" makes a stub venv.
import os, sys
args = sys.argv[1:]
log = os.environ.get("FAKE_PYTHON_LOG")
if log:
    with open(log, "a") as out:
        out.write(" ".join(args) + "\\n")
if args[:2] == ["-m", "venv"]:
    os.makedirs(os.path.join(args[2], "bin"))
    stub = os.path.join(args[2], "bin", "python")
    with open(stub, "w") as out:
        out.write(open(__file__).read().replace("{version}", "{version}"))
    os.chmod(stub, 0o755)
    sys.exit(0)
if args[:1] == ["-c"]:
    sys.version_info = tuple(int(part) for part in "{version}".split(".")) + (0, "final", 0)
    sys.argv = ["-c", *args[2:]]
    exec(args[1])
sys.exit(0)
"""


def fake_python(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"python{version}"
    path.write_text(FAKE_PYTHON.format(python=sys.executable, version=version), encoding="utf-8")
    path.chmod(0o755)
    return path


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_target_with_one_line() -> None:
    done = make("help")
    assert done.returncode == 0, done.stderr
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = {name for line in re.findall(r"^\.PHONY:(.*)$", makefile, re.M) for name in line.split()}
    listed = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert phony - {"need-venv"} <= set(listed), phony - set(listed)
    assert all(len(line.split(None, 1)) == 2 for line in listed.values())
    assert make().stdout == done.stdout  # plain `make` is `make help`


def test_make_pytest_runs_two_xdist_workers_per_core_at_most_eight_and_jobs_0_runs_one_process() -> None:
    default = make("-n", "pytest", f"VENV={VENV}")
    assert default.returncode == 0, default.stderr
    workers = min(2 * len(os.sched_getaffinity(0)), 8)  # what nproc counts
    assert f"-m pytest -n {workers} --dist load" in default.stdout
    serial = make("-n", "pytest", "JOBS=0", f"VENV={VENV}")
    assert "-m pytest -n 0 " in serial.stdout


@pytest.mark.parametrize("target", ["test", "mock", "contract", "live"])
def test_targets_needing_the_venv_say_run_make_install_first(tmp_path: Path, target: str) -> None:
    done = make(target, f"VENV={tmp_path / 'no-venv'}")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "run `make install` first" in output
    assert "No such file" not in output


def test_install_refuses_an_old_python_in_one_line_and_creates_nothing(tmp_path: Path) -> None:
    old = fake_python(tmp_path / "bin", "3.10.12")
    venv = tmp_path / "venv"
    started = time.monotonic()
    done = make("install", f"PYTHON={old}", f"VENV={venv}")
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip() and "***" not in line]
    expected = f"make install: needs Python >= 3.11, but {old} is 3.10; run make install PYTHON=python3.11 (or newer)"
    assert lines == [expected]
    assert not venv.exists()
    assert time.monotonic() - started < 60


def test_install_names_a_missing_interpreter(tmp_path: Path) -> None:
    done = make("install", f"PYTHON={tmp_path / 'python3.99'}", f"VENV={tmp_path / 'venv'}")
    assert done.returncode != 0 and "not found" in done.stdout


def test_install_rebuilds_a_venv_made_by_another_python(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    old = fake_python(tmp_path / "old", "3.10.12")
    (venv / "bin" / "python").symlink_to(old)
    (venv / "leftover").write_text("from the 3.10 venv", encoding="utf-8")
    new = fake_python(tmp_path / "new", "3.12.1")
    log = tmp_path / "calls.log"
    done = make("install", f"PYTHON={new}", f"VENV={venv}", env={"FAKE_PYTHON_LOG": str(log)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "was made by another (or a broken) Python; rebuilding it" in done.stdout
    assert not (venv / "leftover").exists()
    calls = log.read_text(encoding="utf-8")
    assert f"-m venv {venv}" in calls and "-m pip install" in calls


def test_distclean_removes_venv_and_tools(tmp_path: Path) -> None:
    venv, tools = tmp_path / "venv", ROOT / ".tools"
    venv.mkdir()
    had_tools = tools.exists()
    done = subprocess.run(
        ["make", "-n", "distclean", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert f"rm -rf {venv} .tools" in done.stdout
    assert tools.exists() == had_tools  # -n: nothing removed here


def _cmdlines() -> str:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(found)


@contextmanager
def make_mock(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_") and k != "TOKEN"}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "mock", f"PORT={port}", f"VENV={VENV}"],
        cwd=ROOT,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/__mock/health", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "make mock did not start"
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def _status(base: str, token: str) -> int:
    body = {"url": "https://example.com/a.mp4", "timestamps": "1,3"}
    answer = requests.post(base + "/sora/v1/characters", json=body, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


@pytest.mark.slow
def test_make_mock_takes_the_token_from_the_environment_and_keeps_it_off_command_lines() -> None:
    secret = "sk-shell-" + os.urandom(8).hex()
    with make_mock({"SORA_MOCK_TOKEN": secret}) as base:
        assert _status(base, secret) == 200
        assert _status(base, "sk-wrong") == 401
        assert secret not in _cmdlines()
    other = "sk-make-var-" + os.urandom(8).hex()
    with make_mock({"TOKEN": other, "SORA_MOCK_TOKEN": secret}) as base:  # TOKEN wins when both are set
        assert _status(base, other) == 200
        assert _status(base, secret) == 401
        assert other not in _cmdlines() and secret not in _cmdlines()
    with make_mock({}) as base:  # neither: any non-empty token, as make contract expects
        assert _status(base, "anything") == 200


@pytest.mark.slow
def test_make_contract_names_an_empty_target_and_takes_a_seed_and_pytest_args(tmp_path: Path) -> None:
    """``TARGET=`` tests the in-process mock and says so; ``FUZZ_SEED`` and ``ARGS`` reach the suite."""
    junit = tmp_path / "contract.xml"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "contract",
            "TARGET=",
            "MAX_EXAMPLES=3",
            "FUZZ_SEED=77",
            f"ARGS=-q --junitxml={junit}",
            f"VENV={VENV}",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "contract: testing the in-process mock (TARGET / SORA_CONTRACT_TARGET is empty" in done.stdout
    assert "fuzz seed 77" in done.stdout and "contract: tested the in-process mock" in done.stdout
    assert junit.is_file() and "<testsuite" in junit.read_text(encoding="utf-8")
