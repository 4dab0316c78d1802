"""A minimal CGI host for ``git http-backend``: the baseline of ``scripts/bench git``.

``python -m bench.cgi_host PORT PROJECT_ROOT`` serves every repository under
PROJECT_ROOT the way git's own documentation sets http-backend up behind a web
server: one CGI process per request, bodies streamed both ways. A threaded stdlib
HTTP server, so the baseline pays no framework cost of its own beyond what any CGI
host would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close after each response: no length needed
    project_root = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _run(self) -> None:
        url = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
        }
        for name in ("Content-Length", "Content-Encoding", "Git-Protocol"):
            value = self.headers.get(name)
            if value is not None:
                key = name.upper().replace("-", "_")
                env[key if name == "Content-Length" else "HTTP_" + key] = value
        proc = subprocess.Popen(
            ["git", "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        length = int(self.headers.get("Content-Length") or 0)
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"

        def feed() -> None:
            assert proc.stdin is not None
            try:
                if chunked:
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        proc.stdin.write(self.rfile.read(size))
                        self.rfile.readline()
                elif length:
                    remaining = length
                    while remaining:
                        chunk = self.rfile.read(min(65536, remaining))
                        if not chunk:
                            break
                        proc.stdin.write(chunk)
                        remaining -= len(chunk)
            finally:
                proc.stdin.close()

        writer = threading.Thread(target=feed)
        writer.start()
        assert proc.stdout is not None
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        while True:
            line = proc.stdout.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            else:
                headers.append((name, value.strip()))
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason or None)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        shutil.copyfileobj(proc.stdout, self.wfile, 65536)
        writer.join()
        proc.wait()

    do_GET = _run
    do_POST = _run


def main() -> None:
    port, root = int(sys.argv[1]), sys.argv[2]
    Handler.project_root = root
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
