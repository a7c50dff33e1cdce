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
    tls_cert: Annotated[Path | None, typer.Option(envvar="VOXGATE_TLS_CERT")] = None,
    tls_key: Annotated[Path | None, typer.Option(envvar="VOXGATE_TLS_KEY")] = None,
    kamailio: Annotated[str, typer.Option(envvar="VOXGATE_SIP_KAMAILIO")] = "/usr/sbin/kamailio",
) -> None:
    """Write DIR/kamailio.cfg, DIR/hook.secret (kept if present), DIR/tls.cfg (with a
    certificate) and DIR/voxgate-kamailio.service; print the unit's path."""
    from voxgate.sip.kamailio import KamailioFiles

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
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    files = KamailioFiles.of(settings, sip_domain or socket.getfqdn(), directory)
    files.write(kamailio, new_secret=False)
    unit = files.dir / "voxgate-kamailio.service"
    unit.write_text(files.unit(kamailio))
    typer.echo(str(unit))
