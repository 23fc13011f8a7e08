"""Generation hooks: teach the fuzzer the prose rules (windows near the span limits, one source or not)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import schemathesis
from hypothesis import strategies as st

from mock_server.contract.spec import ENDPOINT_PATH

from .target import TASK, TASK_FIELD, URL_FIELD, VIDEO

__all__ = [
    "flatmap_body",
]


def flatmap_body(context: schemathesis.HookContext, body: object) -> st.SearchStrategy[object]:
    """Generation hook: bend each generated body of the endpoint towards the prose rules."""
    operation = getattr(context, "operation", None)
    if operation is not None and (operation.path != ENDPOINT_PATH or operation.method.upper() != "POST"):
        return st.just(body)
    return _variants(body)


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_starts = st.one_of(st.integers(0, 600).map(Decimal), st.decimals(0, 600, places=2))


@st.composite
def _valid_window(draw: st.DrawFn) -> str:
    start = draw(_starts)
    span = draw(st.one_of(st.sampled_from([Decimal(1), Decimal(2), Decimal(3)]), st.decimals(1, 3, places=2)))
    text = f"{_fmt(start)},{_fmt(start + span)}"
    return draw(st.sampled_from([text, text.replace(",", " , ")]))


@st.composite
def _broken_window(draw: st.DrawFn) -> str:
    """A well-formed window that breaks the span rule: near both limits, zero, far over, reversed."""
    start = draw(_starts)
    span = draw(
        st.one_of(
            st.sampled_from([Decimal("3.001"), Decimal("3.5"), Decimal(4), Decimal(5)]),  # just over the maximum
            st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("0.999")]),  # under the minimum
            st.decimals(Decimal("0.01"), Decimal("0.99"), places=2),
            st.decimals(Decimal("3.01"), Decimal(6), places=2),
            st.decimals(Decimal(6), Decimal(1000), places=1),
            st.decimals(Decimal(-3), Decimal("-0.01"), places=2),
        )
    )
    if start + span < 0:  # reversed: keep both numbers non-negative
        start = -span + start.copy_abs()
    return f"{_fmt(start)},{_fmt(start + span)}"


_MALFORMED = [
    "",
    " ",
    "1",
    "1,",
    ",3",
    "1-3",
    "1;3",
    "1,3,5",
    "-1,1",
    "+1,3",
    "1e0,3",
    "1,3s",
    "a,b",
    "NaN,1",
    "inf,2",
    "١,٣",
    "1 ,\t3",
    "0x1,3",
    "1.,3",
    ".5,2",
]


def _variants(body: object) -> st.SearchStrategy[object]:
    if not isinstance(body, dict):
        return st.just(body)
    base: dict[str, Any] = dict(body)

    def with_window(window: str) -> dict[str, Any]:
        return {**base, "timestamps": window}

    def one_source(window: str, use_task: bool) -> dict[str, Any]:
        fixed = {k: v for k, v in base.items() if k not in (URL_FIELD, TASK_FIELD)}
        fixed["timestamps"] = window
        fixed[TASK_FIELD if use_task else URL_FIELD] = TASK if use_task else VIDEO
        return fixed

    def both(window: str) -> dict[str, Any]:
        return {
            **base,
            "timestamps": window,
            URL_FIELD: base.get(URL_FIELD, VIDEO),
            TASK_FIELD: base.get(TASK_FIELD, TASK),
        }

    def neither(window: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k not in (URL_FIELD, TASK_FIELD)} | {"timestamps": window}

    wrong_types = [
        {**base, "timestamps": 13},
        {**base, "timestamps": None},
        {**base, "timestamps": ["1", "3"]},
        {**base, URL_FIELD: None},
        {**base, TASK_FIELD: 123},
        {**base, "model": None},
        {**base, TASK_FIELD: {}},
        {**base, URL_FIELD: []},
        {k: v for k, v in base.items() if k != "timestamps"},
        {**base, URL_FIELD: ""},
        {**base, TASK_FIELD: ""},
    ]
    # Weighted so that the bodies isolating one prose rule (one source with a broken window,
    # both sources, no source) come often enough for a few dozen examples to reach every rule.
    weighted: list[tuple[st.SearchStrategy[object], int]] = [
        (st.just(body), 1),
        (st.builds(one_source, _valid_window(), st.booleans()), 2),
        (_valid_window().map(with_window), 1),
        (_broken_window().map(with_window), 1),
        (st.builds(one_source, _broken_window(), st.booleans()), 4),
        (st.sampled_from(_MALFORMED).map(with_window), 1),
        (_valid_window().map(both), 2),
        (_valid_window().map(neither), 2),
        (st.sampled_from(wrong_types), 1),
    ]
    return st.sampled_from([strategy for strategy, weight in weighted for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )
