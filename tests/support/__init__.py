"""Helpers shared by the tests; conftest.py holds fixtures only."""

import pytest

# Their asserts explain themselves only when pytest rewrites them, which it must do at import.
pytest.register_assert_rewrite("support.api", "support.sse")
