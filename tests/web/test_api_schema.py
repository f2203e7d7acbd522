"""Schemathesis against the API's OpenAPI schema, in-process, with an ``operate`` token: valid requests
(positive data, with the path's robot, request and report drawn from ones that exist or not) and invalid ones
(negative data): no answer is a server error (5xx). Bounded (a few examples per operation and mode) to keep the
suite fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from web_support import ROBOT, USER, web_app, web_home

EXAMPLES = 6
KNOWN = {"robot": ROBOT, "request_id": 1, "name": "pnl-bot.html"}


def _fuzz(
    cases: st.SearchStrategy[schemathesis.Case], label: str, auth: dict[str, str], seen: dict[str, set[int]]
) -> Callable[[], None]:
    """A Hypothesis test calling the app with ``cases``; it records the status codes seen for ``label``."""

    @given(case=cases)
    @settings(max_examples=EXAMPLES * 3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=auth, checks=[not_a_server_error])
        seen.setdefault(label, set()).add(response.status_code)

    return call  # type: ignore[no-any-return]


def test_no_request_the_schema_allows_or_not_makes_the_api_fail(tmp_path: Path) -> None:
    home = web_home(tmp_path / "home", f"sqlite:///{tmp_path / 'robohost.db'}", bars=600)
    (home / "reports" / "pnl-bot.html").write_text("<html></html>")
    with web_app(home) as w:
        _, token = w.ctx.auth.add_token(USER, "operate", "schemathesis", w.now[0])
        auth = {"Authorization": f"Bearer {token}"}
        w.ctx.control.request(ROBOT, "run", USER, "127.0.0.1", w.now[0])  # request 1 exists
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", w.web, headers=auth)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 25, [op.label for op in operations]
        seen: dict[str, set[int]] = {}

        for operation in operations:
            names = re.findall(r"\{(\w+)\}", operation.path)
            known = {name: KNOWN[name] for name in names}
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )

            _fuzz(cases, operation.label, auth, seen)()
        assert set(seen) == {op.label for op in operations}
        answered = {label for label, codes in seen.items() if codes & {200, 409}}
        assert len(answered) >= len(operations) - 2, seen  # most operations were reached with real data
        print({label: sorted(codes) for label, codes in seen.items()})
