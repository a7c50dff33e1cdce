"""``voxgate sip config DIR``: Kamailio's configuration and a systemd unit, for operators who
run Kamailio as a system service and voxgate with ``--sip-edge external --sip-dir DIR``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from voxgate.cli.common import app
from voxgate.config import Settings
from voxgate.serve_command import DEFAULTS

__all__ = ["sip_app"]

NG = "127.0.0.1:22222"  # rtpengine's ng socket as a service (voxgate's own picks a free port)

sip_app = typer.Typer(no_args_is_help=True, help="The SIP edge (Kamailio).")
app.add_typer(sip_app, name="sip")


@sip_app.command("config")
def sip_config(
    directory: Path,
    host: Annotated[str, typer.Option(envvar="VOXGATE_HOST")] = DEFAULTS.host,
    sip_domain: Annotated[str, typer.Option(envvar="VOXGATE_SIP_DOMAIN")] = "",
    sip_address: Annotated[str, typer.Option(envvar="VOXGATE_SIP_ADDRESS")] = "",
    sip_port: Annotated[int, typer.Option(envvar="VOXGATE_SIP_PORT")] = DEFAULTS.sip_port,
    sip_tls_port: Annotated[
        int, typer.Option(envvar="VOXGATE_SIP_TLS_PORT")
    ] = DEFAULTS.sip_tls_port,
    sip_ws_port: Annotated[int, typer.Option(envvar="VOXGATE_SIP_WS_PORT")] = DEFAULTS.sip_ws_port,
    sip_hook_port: Annotated[
        int, typer.Option(envvar="VOXGATE_SIP_HOOK_PORT")
    ] = DEFAULTS.sip_hook_port,
    sip_leg_port: Annotated[
        int, typer.Option(envvar="VOXGATE_SIP_LEG_PORT")
    ] = DEFAULTS.sip_leg_port,
    tls_cert: Annotated[Path | None, typer.Option(envvar="VOXGATE_TLS_CERT")] = None,
    tls_key: Annotated[Path | None, typer.Option(envvar="VOXGATE_TLS_KEY")] = None,
    media_address: Annotated[str, typer.Option(envvar="VOXGATE_MEDIA_ADDRESS")] = "",
    media_ports: Annotated[str, typer.Option(envvar="VOXGATE_MEDIA_PORTS")] = DEFAULTS.media_ports,
    rtpengine_ng: Annotated[str, typer.Option(envvar="VOXGATE_RTPENGINE_NG")] = NG,
    kamailio: Annotated[str, typer.Option(envvar="VOXGATE_SIP_KAMAILIO")] = "/usr/sbin/kamailio",
    rtpengine: Annotated[str, typer.Option(envvar="VOXGATE_SIP_RTPENGINE")] = "/usr/bin/rtpengine",
) -> None:
    """Write DIR/kamailio.cfg, DIR/hook.secret (kept if present), DIR/tls.cfg (with a
    certificate) and the units DIR/voxgate-kamailio.service and DIR/voxgate-rtpengine.service
    (rtpengine's ng socket on --rtpengine-ng); print the units' paths."""
    from voxgate.sip.engines import systemd_unit
    from voxgate.sip.kamailio import KamailioFiles
    from voxgate.sip.rtpengine import Rtpengine

    if (tls_cert is None) != (tls_key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    settings = Settings(
        host=host,
        sip_domain=sip_domain,
        sip_address=sip_address,
        sip_port=sip_port,
        sip_tls_port=sip_tls_port,
        sip_ws_port=sip_ws_port,
        sip_hook_port=sip_hook_port,
        sip_leg_port=sip_leg_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        media_address=media_address,
        media_ports=media_ports,
        rtpengine_ng=rtpengine_ng,
    )
    files = KamailioFiles.of(settings, sip_domain or socket.getfqdn(), directory)
    relay = Rtpengine.of(settings, directory)
    files.write(kamailio, new_secret=False)
    units = {
        "voxgate-kamailio.service": systemd_unit(
            "Kamailio, the SIP edge of voxgate", files.argv(kamailio)
        ),
        "voxgate-rtpengine.service": systemd_unit(
            "rtpengine, the media relay of voxgate's SIP edge", relay.argv(rtpengine)
        ),
    }
    for name, text in units.items():
        (files.dir / name).write_text(text)
        typer.echo(str(files.dir / name))
