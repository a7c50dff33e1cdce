from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.peers import SipNode, Sipp, free_udp_port, loopback_address
from tests.sip.test_trunks import Carrier


@pytest.fixture
def sipp(sip_node: SipNode, tmp_path: Path) -> Sipp:
    return Sipp(tmp_path, sip_node.sip_port)


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[Carrier]:
    """The operator's carrier: a sipp of its own on an address of its own."""
    c = Carrier(tmp_path, loopback_address(), free_udp_port())
    yield c
    if c.proc is not None and c.proc.poll() is None:
        c.proc.kill()
