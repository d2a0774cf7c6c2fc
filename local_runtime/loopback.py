"""A server of this process on loopback: 127.0.0.1, a free port, served from a daemon thread.

The offline stand-ins that the code under test reaches over HTTP are such servers: GitLab's API
(gitlab_api.py, which the runtime's deploy trigger calls through gitlab.py) and the AWS endpoint of the offline
CI jobs (tools/gitlab_ci/aws.py). Nothing outside this machine can reach them.
"""
from __future__ import annotations

import socketserver
import threading
from typing import Self

HOST = "127.0.0.1"


class LoopbackServer:
    """Serves `server` (bound to HOST port 0: http.server's or werkzeug's, both socketservers) once started."""

    def __init__(self, server: socketserver.TCPServer, thread_name: str):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name=thread_name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_port}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
