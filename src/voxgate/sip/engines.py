"""Children voxgate runs (Kamailio, rtpengine, its own gateway workers): started through the
warden, restarted when they die, stopped with voxgate, never orphaned (``warden.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog

from voxgate.domain.errors import ConfigurationError

__all__ = ["Engine", "find_binary", "systemd_unit"]

log = structlog.get_logger("voxgate.sip")

SYSTEM_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0)  # after the first crash, then each further one


def find_binary(name: str, packages: str) -> str:
    """The engine's executable; ``ConfigurationError`` naming the apt packages if missing."""
    if os.sep in name:
        if os.access(name, os.X_OK):
            return name
    else:
        path = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS])
        found = shutil.which(name, path=path)
        if found:
            return found
    raise ConfigurationError(
        f"{name} is not installed; --sip needs it: sudo apt-get install {packages}"
    )


def systemd_unit(description: str, argv: Sequence[str]) -> str:
    """A unit that runs an engine as the system's service (``--sip-edge external``)."""
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={' '.join(argv)}\n"
        "Restart=always\n"
        "RestartSec=1\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


class Engine:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path | None,
        ready: Callable[[], Awaitable[bool]],
        on_restart: Callable[[], Awaitable[None]] | None = None,
        *,
        env: dict[str, str] | None = None,
        grace: float | None = None,
    ) -> None:
        """``log_file`` None: the child writes to voxgate's own output. ``env``: its whole
        environment (default: voxgate's). ``grace``: seconds between the warden's SIGTERM and
        its SIGKILL (default: the warden's)."""
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self._env = env
        self._warden = ["--grace", str(grace)] if grace is not None else []
        self._ready = ready
        self._on_restart = on_restart
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The warden's pid (the engine runs in its process group)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float = 15.0) -> None:
        """Start and wait until ``ready`` says so; ``ConfigurationError`` with the engine's
        last log lines when it exits or stays unready."""
        await self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            assert self._proc is not None
            if self._proc.returncode is not None:
                break
            if await self._ready():
                self._watch = loop.create_task(self._supervise())
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise ConfigurationError(f"{self.name} did not start: {self._tail()}")

    async def _spawn(self) -> None:
        with contextlib.ExitStack() as files:
            out = None
            if self.log_file is not None:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                out = files.enter_context(self.log_file.open("ab"))
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "voxgate.sip.warden",
                *self._warden,
                "--",
                *self.argv,
                stdin=asyncio.subprocess.PIPE,  # its end closes with us, however we end
                stdout=out,
                stderr=out,
                env=self._env,
                start_new_session=True,
            )

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            delay = RESTART_DELAYS[min(self.restarts, len(RESTART_DELAYS) - 1)]
            self.restarts += 1
            log.error(
                "engine exited; restarting",
                engine=self.name,
                code=code,
                restart_in=delay,
                log=str(self.log_file or "above"),
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            await self._spawn()
            for _ in range(150):
                if await self._ready():
                    break
                await asyncio.sleep(0.1)
            log.info("engine restarted", engine=self.name, restarts=self.restarts)
            if self._on_restart is not None:
                with contextlib.suppress(Exception):
                    await self._on_restart()

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the warden ends the engine's whole group
        try:
            await asyncio.wait_for(proc.wait(), 10.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()

    def _tail(self, lines: int = 8) -> str:
        if self.log_file is None:
            return "its output is above"
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(no output)"
