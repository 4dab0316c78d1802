"""Running ``git upload-pack`` / ``git receive-pack --stateless-rpc`` for smart HTTP.

Git itself produces and consumes packs; this module only spawns it and moves bytes,
in bounded chunks, so no pack is ever held in memory.

Two constraints shape it. The I/O must be cooperative under gevent (one blocked pipe
read would stall every request of a gunicorn worker), and spawning must be cheap
from a big worker process: gevent's ``subprocess`` forks and runs Python in the child
(about 10 ms from a 90 MB worker, three times per clone), while ``os.posix_spawn``
uses vfork (about 1 ms). So git is started with ``posix_spawn``; its pipes are read
and written with gevent's cooperative ``nb_read``/``nb_write`` when gevent has patched
the process (our helper threads are greenlets then), and with plain blocking calls
in real threads otherwise. gevent is never imported here unless the process already
loaded and patched with it, so gitstore keeps no hard dependency on it.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .protocol import FLUSH_PKT, encode_pkt

__all__ = [
    "GitService",
    "ServiceProcess",
    "advertise_refs",
    "parse_git_protocol",
]

CHUNK = 256 * 1024
#: Environment variables that would point git somewhere other than the repository asked for.
_UNSAFE_ENV = re.compile(
    r"GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|NAMESPACE"
    r"|CEILING_DIRECTORIES|CONFIG.*|QUARANTINE_PATH|PROTOCOL)"
)
_PROTOCOL_ITEM = re.compile(r"[A-Za-z0-9._-]{1,32}(=[A-Za-z0-9._-]{1,64})?")


class GitService(enum.Enum):
    """The two smart-HTTP services; the value is the name clients put in URLs."""

    UPLOAD_PACK = "git-upload-pack"
    RECEIVE_PACK = "git-receive-pack"

    @property
    def subcommand(self) -> str:
        return self.value.removeprefix("git-")

    @property
    def request_type(self) -> str:
        return f"application/x-{self.value}-request"

    @property
    def result_type(self) -> str:
        return f"application/x-{self.value}-result"

    @property
    def advertisement_type(self) -> str:
        return f"application/x-{self.value}-advertisement"


def parse_git_protocol(header: str | None) -> str | None:
    """A safe ``GIT_PROTOCOL`` value from the ``Git-Protocol`` header, or None.

    The header reaches git's environment, so only colon-separated ``key[=value]``
    items of plain characters pass (``version=2`` in practice).
    """
    if not header:
        return None
    items = header.strip().split(":")
    if len(items) > 8 or not all(_PROTOCOL_ITEM.fullmatch(item) for item in items):
        return None
    return ":".join(items)


def _gevent_os() -> Any | None:
    """gevent's ``os`` helpers when gevent has patched this process, else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return importlib.import_module("gevent.os")
    return None


class _Pipe:
    """One end of a pipe to git, cooperative under gevent."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        self._gos = _gevent_os()
        if self._gos is not None:
            self._gos.make_nonblocking(fd)

    def read(self, n: int) -> bytes:
        if self.fd is None:
            return b""
        if self._gos is not None:
            return self._gos.nb_read(self.fd, n)  # type: ignore[no-any-return]
        return os.read(self.fd, n)

    def write(self, data: memoryview) -> int:
        if self.fd is None:
            raise BrokenPipeError("closed")
        if self._gos is not None:
            return self._gos.nb_write(self.fd, data)  # type: ignore[no-any-return]
        return os.write(self.fd, data)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class _Git:
    """A git process started with ``posix_spawn``: stdin/stdout pipes, stderr to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr: IO[bytes]) -> None:
        in_read, in_write = os.pipe()
        out_read, out_write = os.pipe()
        try:
            self.pid = os.posix_spawnp(
                argv[0],
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, in_read, 0),
                    (os.POSIX_SPAWN_DUP2, out_write, 1),
                    (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2),
                ],
            )
        except BaseException:
            for fd in (in_read, in_write, out_read, out_write):
                os.close(fd)
            raise
        os.close(in_read)
        os.close(out_write)
        self.stdin = _Pipe(in_write)
        self.stdout = _Pipe(out_read)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else's SIGCHLD handler
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait without blocking the event loop (time.sleep is gevent's when patched)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("git", timeout or 0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _UNSAFE_ENV.fullmatch(k)}
    env.update(extra or {})
    return env


def _command(
    git_binary: str,
    service: GitService,
    repo_path: Path,
    config: Sequence[tuple[str, str]],
    *,
    advertise: bool,
) -> list[str]:
    cmd = [git_binary]
    for key, value in config:
        cmd += ["-c", f"{key}={value}"]
    cmd += [service.subcommand, "--stateless-rpc"]
    if advertise:
        cmd.append("--advertise-refs")
    cmd.append(str(repo_path))
    return cmd


def advertise_refs(
    repo_path: Path,
    service: GitService,
    *,
    git_protocol: str | None = None,
    config: Sequence[tuple[str, str]] = (),
    env: Mapping[str, str] | None = None,
    git_binary: str = "git",
) -> bytes:
    """The body of ``GET info/refs?service=…``.

    Protocol v0/v1 answers start with a ``# service=`` line and a flush; a v2 answer
    is the capability advertisement alone. The advertisement is a list of refs, small
    enough to return whole (and so an error can still become an HTTP status).
    """
    with ServiceProcess(
        repo_path,
        service,
        git_protocol=git_protocol,
        config=config,
        env=env,
        git_binary=git_binary,
        advertise=True,
    ) as process:
        process.close_input()
        out = b"".join(process.stream_output())
        if process.wait() != 0:
            raise OSError(f"git {service.subcommand} failed: {process.stderr_text()[:500]}")
    if git_protocol and "version=2" in git_protocol.split(":"):
        return out
    return encode_pkt(f"# service={service.value}\n") + FLUSH_PKT + out


class ServiceProcess:
    """One running ``git <service> --stateless-rpc``: feed it the request, read its answer.

    Always use it as a context manager (or call :meth:`close`): leaving closes git's
    input (so an interrupted push makes git abandon its quarantined objects) and
    reaps the process.
    """

    def __init__(
        self,
        repo_path: Path,
        service: GitService,
        *,
        git_protocol: str | None = None,
        config: Sequence[tuple[str, str]] = (),
        env: Mapping[str, str] | None = None,
        git_binary: str = "git",
        advertise: bool = False,
    ) -> None:
        full_env = _clean_env(env)
        if git_protocol:
            full_env["GIT_PROTOCOL"] = git_protocol
        self.service = service
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.proc = _Git(
                _command(git_binary, service, repo_path, config, advertise=advertise),
                full_env,
                self._stderr,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._output = bytearray()
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- input ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to git (BrokenPipeError if git stopped reading)."""
        view = memoryview(data)
        while view:
            view = view[self.proc.stdin.write(view) :]

    def close_input(self) -> None:
        self.proc.stdin.close()

    def feed(self, chunks: Iterable[bytes]) -> None:
        """Write every chunk, then close git's input.

        If reading ``chunks`` fails (the client went away, the body is too big) git's
        input is closed early: git sees a truncated request and gives up cleanly.
        """
        try:
            for chunk in chunks:
                self.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            self.close_input()

    def feed_in_background(self, data: bytes) -> None:
        """Feed a small, already-read request while the caller streams the answer."""
        thread = threading.Thread(target=self.feed, args=([data],), daemon=True)
        thread.start()

    # --- output ---------------------------------------------------------------------

    def stream_output(self) -> Iterator[bytes]:
        """Git's answer in chunks as it is produced (for fetches: the pack)."""
        while True:
            chunk = self.proc.stdout.read(CHUNK)
            if not chunk:
                return
            yield chunk

    def collect_output_in_background(self, limit: int = 16 * 1024 * 1024) -> None:
        """Gather a small answer (a push report) while the caller feeds the request.

        Reading concurrently keeps git from blocking on a full pipe if it reports
        progress before it has read the whole pack.
        """

        def run() -> None:
            for chunk in self.stream_output():
                if len(self._output) < limit:
                    self._output += chunk

        self._reader = threading.Thread(target=run, daemon=True)
        self._reader.start()

    def collected_output(self, timeout: float | None = None) -> bytes:
        if self._reader is not None:
            self._reader.join(timeout)
        return bytes(self._output)

    # --- lifecycle ------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read(64 * 1024).decode("utf-8", "replace")

    def kill(self) -> None:
        """Stop git at once (the client of a fetch went away)."""
        self.proc.kill()

    def close(self, grace: float = 30.0) -> None:
        """Close git's input, give it ``grace`` seconds to finish, then kill it."""
        self.close_input()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)  # git has exited: the reader sees end-of-file at once
        self.proc.stdout.close()
        self._stderr.close()
