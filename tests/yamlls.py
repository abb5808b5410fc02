"""A minimal LSP client for yaml-language-server over stdio, to test the schema with the editors' own engine.

The server is the npm package that `.ci/setup` installs into `.ci/node`; it speaks JSON-RPC with
`Content-Length` headers. The client answers the few requests the server sends (configuration,
capability registration, progress) and collects `textDocument/publishDiagnostics`. Every wait is bounded.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".ci/node/node_modules/yaml-language-server/bin/yaml-language-server"
WAIT = 30.0  # seconds for any one answer: the first validation compiles the schema


@dataclass(frozen=True)
class Diagnostic:
    line: int  # 1-based, as editors and `runbook validate` show it
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


class YamlLanguageServer:
    """One running server; `diagnostics(path, text)` opens a document and returns what it reports."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            ["node", str(SERVER), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.settings = settings
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        self.version = 0
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        self.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": settings}})

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line:
                return
            self.messages.put(json.loads(stream.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self._send({"id": self.next_id, "method": method, "params": params})
        return self._wait(lambda m: m.get("id") == self.next_id and "method" not in m)["result"]

    def _wait(self, wanted: Any) -> dict[str, Any]:
        """The next message `wanted` accepts, answering the server's own requests meanwhile."""
        while True:
            message = self.messages.get(timeout=WAIT)
            if "method" in message and "id" in message:
                self._answer(message)
            elif wanted(message):
                return message

    def _answer(self, request: dict[str, Any]) -> None:
        result: Any = None
        if request["method"] == "workspace/configuration":
            result = [
                self.settings if i.get("section") == "yaml" else None for i in request["params"]["items"]
            ]
        self._send({"id": request["id"], "result": result})

    def diagnostics(self, path: Path, text: str) -> list[Diagnostic]:
        """Open `text` as the document `path` and return the diagnostics the server publishes for it."""
        uri = path.as_uri()
        self.version += 1
        document = {"uri": uri, "languageId": "yaml", "version": self.version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})
        published = self._wait(
            lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
        )
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        return [
            Diagnostic(d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1, d["message"])
            for d in published["params"]["diagnostics"]
        ]

    def wait_until_validating(self, path: Path, broken: str, attempts: int = 20) -> None:
        """Open `broken` until the server reports something: right after start-up it may validate before
        the settings (and so the schema mapping) are applied, and publish nothing."""
        for _ in range(attempts):
            if self.diagnostics(path.with_name(f"{self.version}-{path.name}"), broken):
                return
        raise AssertionError(f"yaml-language-server reported nothing on {broken!r}")

    def hover(self, path: Path, text: str, line: int, column: int) -> str:
        """The hover text at a 1-based position of `text` opened as `path`."""
        uri = path.as_uri()
        self.version += 1
        document = {"uri": uri, "languageId": "yaml", "version": self.version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})
        position = {"line": line - 1, "character": column - 1}
        result = self.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": position})
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        return str(result["contents"]["value"]) if result else ""

    def completion(self, path: Path, text: str, line: int, column: int) -> list[str]:
        """The labels the server offers at a 1-based position of `text` opened as `path`."""
        uri = path.as_uri()
        self.version += 1
        document = {"uri": uri, "languageId": "yaml", "version": self.version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})
        position = {"line": line - 1, "character": column - 1}
        found = self.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position})
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        items = found["items"] if isinstance(found, dict) else found or []
        return [str(item["label"]) for item in items]

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=WAIT)
