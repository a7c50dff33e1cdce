from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip.peers import SipNode, Sipp


@pytest.fixture
def sipp(sip_node: SipNode, tmp_path: Path) -> Sipp:
    return Sipp(tmp_path, sip_node.sip_port)
