"""Running ``git upload-pack`` / ``git receive-pack --stateless-rpc`` for smart HTTP.

Git itself produces and consumes packs; this module only spawns it and moves bytes,
in bounded chunks, so no pack is ever held in memory. The I/O must be cooperative
when the caller runs under gevent (one blocked pipe read would stall every request of
a gunicorn worker): when gevent has monkey-patched the process, the standard
``subprocess`` and ``threading`` modules already are gevent's, and if gevent patched
threads but not ``subprocess``, gevent's own ``subprocess`` is used. gevent is never
imported here unless the process already loaded it, so gitstore keeps no hard
dependency on it.

Known cost: gevent's ``Popen`` forks and runs Python in the child, about 10 ms from a
90 MB worker (the stdlib's vfork path takes about 1 ms), three times per clone.
``os.posix_spawn`` with gevent's ``nb_read``/``nb_write`` was tried and hung under
gunicorn (a child left unreaped); it needs investigation before it can replace this.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .protocol import FLUSH_PKT, encode_pkt

__all__ = [
    "GitService",
    "ServiceProcess",
    "advertise_refs",
    "cooperative_popen",
    "parse_git_protocol",
]

CHUNK = 256 * 1024
#: Environment variables that would point git somewhere other than the repository asked for.
_UNSAFE_ENV = re.compile(
    r"GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|NAMESPACE"
    r"|CEILING_DIRECTORIES|CONFIG.*|QUARANTINE_PATH|PROTOCOL)"
)
_PROTOCOL_ITEM = re.compile(r"[A-Za-z0-9._-]{1,32}(=[A-Za-z0-9._-]{1,64})?")

Popen = Callable[..., "subprocess.Popen[bytes]"]


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


def cooperative_popen() -> Popen:
    """``Popen`` whose pipes suit the caller's concurrency model.

    Under gevent's monkey-patching (gunicorn's gevent worker) ``subprocess.Popen`` is
    gevent's cooperative one already. If only ``threading`` was patched, our helper
    "threads" are greenlets, so gevent's ``subprocess`` is needed as well. Without
    patching (a test client, a shell), plain threads and the stdlib are right: gevent
    objects must not be used from real threads.
    """
    monkey = sys.modules.get("gevent.monkey")
    if (
        monkey is not None
        and monkey.is_module_patched("threading")
        and not monkey.is_module_patched("subprocess")
    ):
        return importlib.import_module("gevent.subprocess").Popen  # type: ignore[no-any-return]
    return subprocess.Popen


def _clean_env(extra: Mapping[str, str | None] | None) -> dict[str, str]:
    """This process's environment without git-redirecting variables, plus ``extra``
    (where a None value removes the variable)."""
    env = {k: v for k, v in os.environ.items() if not _UNSAFE_ENV.fullmatch(k)}
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
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
    env: Mapping[str, str | None] | None = None,
    git_binary: str = "git",
    popen: Popen | None = None,
) -> bytes:
    """The body of ``GET info/refs?service=…``.

    Protocol v0/v1 answers start with a ``# service=`` line and a flush; a v2 answer
    is the capability advertisement alone. The advertisement is a list of refs, small
    enough to return whole (and so an error can still become an HTTP status).
    """
    full_env = _clean_env(env)
    if git_protocol:
        full_env["GIT_PROTOCOL"] = git_protocol
    proc = (popen or cooperative_popen())(
        _command(git_binary, service, repo_path, config, advertise=True),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise OSError(f"git {service.subcommand} failed: {err.decode(errors='replace')[:500]}")
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
        env: Mapping[str, str | None] | None = None,
        git_binary: str = "git",
        popen: Popen | None = None,
    ) -> None:
        full_env = _clean_env(env)
        if git_protocol:
            full_env["GIT_PROTOCOL"] = git_protocol
        self.service = service
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.proc = (popen or cooperative_popen())(
                _command(git_binary, service, repo_path, config, advertise=False),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=full_env,
                bufsize=0,
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
        stdin = self.proc.stdin
        assert stdin is not None
        view = memoryview(data)
        while view:
            written = stdin.write(view)
            view = view[written if written is not None else len(view) :]

    def close_input(self) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

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
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            chunk = stdout.read(CHUNK)
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
        if self.proc.poll() is None:
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
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
