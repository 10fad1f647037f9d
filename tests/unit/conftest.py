"""Shared settings for the unit tests."""

from __future__ import annotations

from hypothesis import settings

# Deadlines make tests that touch SQLite or threads flaky on a loaded machine; the suite
# stays fast through small example counts instead.
settings.register_profile("unit", deadline=None, max_examples=100)
settings.load_profile("unit")
