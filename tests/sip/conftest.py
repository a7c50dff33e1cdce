from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for
from tests.sip.peers import SipNode, Sipp, start_sip_node


@pytest.fixture(scope="module")
def sip_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipNode]:
    """One voxgate with its Kamailio (SQLite, in-process bus), shared by a module's tests."""
    node = start_sip_node(Voxgate, workdir=tmp_path_factory.mktemp("sipnode"))
    yield node
    node.vg.stop()


@pytest.fixture
def sip_api(sip_node: SipNode) -> Iterator[Api]:
    a = api_for(sip_node.vg)
    yield a
    a.http.close()


@pytest.fixture
def sipp(sip_node: SipNode, tmp_path: Path) -> Sipp:
    return Sipp(tmp_path, sip_node.sip_port)
