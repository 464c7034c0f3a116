"""Transport tests run on every WebSocket backend: the ``opener`` fixture."""

from __future__ import annotations

import pytest

from voxengine.transport import Connector
from voxengine.transport.backends import TRANSPORTS, connector


@pytest.fixture(params=TRANSPORTS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name in turn (``"websockets"``, ``"picows"``)."""
    return str(request.param)


@pytest.fixture
def opener(backend: str) -> Connector:
    """The connector of each backend in turn (``open_websocket``, ``open_picows``)."""
    return connector(backend)
