"""A minimal local stand-in for the Hugging Face Hub's write API, for upload tests without network.

It answers the four calls ``HfApi.create_repo`` + ``HfApi.upload_folder`` make for small files:
``POST /api/repos/create``, ``POST /api/validate-yaml`` (the model card's front matter must parse as
YAML with a ``library_name`` and a list of ``tags``), ``POST /api/{type}s/{repo}/preupload/{rev}`` (every file "regular", so
no LFS/xet transfer) and ``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON with base64 contents).
Anything else is answered 404 and recorded in ``unexpected``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_REPO_CALL = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)")


def _card_metadata_errors(card: str) -> list[str]:
    """What the Hub would object to in a model card's YAML front matter (the part tests rely on)."""
    parts = card.split("---\n")
    if not card.startswith("---\n") or len(parts) < 3:
        return ["no YAML front matter"]
    try:
        metadata = yaml.safe_load(parts[1])
    except yaml.YAMLError as err:
        return [f"invalid YAML: {err}"]
    errors = []
    if not isinstance(metadata.get("library_name"), str):
        errors.append("library_name must be a string")
    if not isinstance(metadata.get("tags"), list):
        errors.append("tags must be a list")
    return errors


class LocalHub:
    """Run with ``with LocalHub() as hub:``; ``hub.url`` is the endpoint, ``hub.repos`` the result."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.created: list[dict] = []
        self.commits: list[dict] = []
        self.validated_cards: list[str] = []
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.timeout = 1.0
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self) -> None:
                hub.unexpected.append(f"GET {self.path}")
                self._reply(404, {"error": "not implemented by LocalHub"})

            def do_POST(self) -> None:
                body = self._body()
                if self.path.split("?")[0] == "/api/repos/create":
                    request = json.loads(body)
                    repo_id = "/".join(filter(None, [request.get("organization"), request["name"]]))
                    with hub.lock:
                        hub.created.append(request)
                        hub.repos.setdefault(repo_id, {})
                    self._reply(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
                    return
                if self.path.split("?")[0] == "/api/validate-yaml":
                    errors = _card_metadata_errors(json.loads(body)["content"])
                    with hub.lock:
                        hub.validated_cards.append(json.loads(body)["content"])
                    self._reply(
                        400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []}
                    )
                    return
                match = _REPO_CALL.match(self.path)
                if match is None:
                    hub.unexpected.append(f"POST {self.path}")
                    self._reply(404, {"error": "not implemented by LocalHub"})
                    return
                _, repo_id, action, _ = match.groups()
                if repo_id not in hub.repos:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if action == "preupload":
                    files = json.loads(body)["files"]
                    modes = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                    self._reply(200, {"files": modes})
                    return
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                with hub.lock:
                    hub.commits.append(lines[0]["value"])
                    for line in lines[1:]:
                        if line["key"] != "file" or line["value"].get("encoding") != "base64":
                            hub.unexpected.append(f"commit item {line['key']}")
                            continue
                        hub.repos[repo_id][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                oid = hashlib.sha1(body).hexdigest()
                self._reply(
                    200,
                    {
                        "commitUrl": f"{hub.url}/{repo_id}/commit/{oid}",
                        "commitOid": oid,
                        "pullRequestUrl": None,
                    },
                )

        return Handler
