"""Readiness findings the library is being fixed for, by rule. The tests that run
the rules over the suite's apps (test_deploy_readiness.py) and README.md's (test_readme.py)
report a pending rule's findings as expected failures (xfail, with the findings) instead of
failures, and pass once the rule finds nothing: remove the entry then. Every other rule's
findings fail as always.
"""

from __future__ import annotations

from trading_constructs.readiness import RULES

READINESS_PENDING: dict[str, str] = {}
"""Rule id: why its findings are expected for now."""


def test_every_pending_entry_names_a_rule() -> None:
    assert set(READINESS_PENDING) <= {rule.id for rule in RULES}
