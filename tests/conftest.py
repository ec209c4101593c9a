from __future__ import annotations

import pytest
from hypothesis import settings as hypothesis_settings

# Shared machines are noisy: no per-example deadline, and a fixed profile for CI.
hypothesis_settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
