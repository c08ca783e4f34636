#!/usr/bin/python3
"""A custom authentication server in the reference's custom-auth API 0.5.0,
like its sample user/password server, for the broker's tests.

    custom_auth_server.py --users USERS.json [--tokens TOKENS.json] --cert C --key K
                          [--client-ca CA] --port-file F [--log L]

POST /?api-version=0.5.0 with {"type":"connect","username","password"
(base64),"certs"} answers:
  200 {"expiry": now + user.expiry_s (RFC 3339), "attributes": user.attributes}
  403 {"reason": user.deny_reason or 134, "message": ...}
  400 (body not JSON, unknown type), 405 (not POST),
  422 {"supportedVersions": ["0.5.0"]} (other api-version; the path /v04/
       claims to support only 0.4.0, to test a version mismatch)
{"type":"auth","authenticationMethod","authenticationData" (base64)}, the
broker's form for MQTT 5 enhanced authentication, is judged by the token
(the decoded data) in TOKENS.json: {"tok-1": {"method": "custom-token",
"attributes": {...}, "expiry_s": 3600, "deny_reason": 135, "status": 503,
"delay_s": 0}};
an unknown token or another method is a 403 with reason 135; "status"
answers that HTTP status with no body (a server failing).
A user's "delay_s" makes the answer wait (a slow server). Each request is
appended to the log file as one JSON line (path, headers, body, whether the
broker presented a client certificate), for the tests' assertions.

USERS.json: {"alice": {"password": "wonderland", "attributes": {...},
"expiry_s": 3600, "deny_reason": 138, "delay_s": 0}}.
Readiness: the port is written to --port-file once the socket listens.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import ssl
import threading
import time
import urllib.parse

LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the broker reuses connections

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body):
        peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        entry = {"path": self.path, "headers": dict(self.headers.items()),
                 "body": body, "client_cert": bool(peer), "t": time.time()}
        if self.server.log_path:
            with LOCK, open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_GET(self):
        self._send(405, b"method not allowed", "text/plain")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        url = urllib.parse.urlparse(self.path)
        version = urllib.parse.parse_qs(url.query).get("api-version", [""])[0]
        try:
            body = json.loads(raw)
        except ValueError:
            self._record(raw.decode(errors="replace"))
            self._send(400, b"request body is not JSON", "text/plain")
            return
        self._record(body)
        supported = ["0.4.0"] if url.path.startswith("/v04") else ["0.5.0"]
        if version not in supported:
            self._send(422, {"supportedVersions": supported})
            return
        if isinstance(body, dict) and body.get("type") == "auth":
            self._auth(body)
            return
        if not isinstance(body, dict) or body.get("type") != "connect":
            self._send(400, b"unsupported request type", "text/plain")
            return
        self._connect(body)

    def _allow(self, entry):
        expiry = (datetime.datetime.now(datetime.timezone.utc) +
                  datetime.timedelta(seconds=entry.get("expiry_s", 3600)))
        self._send(200, {"expiry": expiry.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"), "attributes": entry.get("attributes", {})})

    def _auth(self, body):
        try:
            token = base64.b64decode(body.get("authenticationData") or "",
                                     validate=True).decode()
        except ValueError:
            self._send(400, b"authenticationData is not base64", "text/plain")
            return
        entry = self.server.tokens.get(token)
        if entry and entry.get("delay_s"):
            time.sleep(entry["delay_s"])
        if entry and entry.get("status"):
            self._send(entry["status"], b"failing on purpose", "text/plain")
            return
        if entry is None or entry.get("method", "custom-token") != body.get(
                "authenticationMethod") or entry.get("deny_reason"):
            reason = (entry or {}).get("deny_reason") or 135
            self._send(403, {"reason": reason, "message": "token refused"})
            return
        self._allow(entry)

    def _connect(self, body):
        user = self.server.users.get(body.get("username") or "")
        if user and user.get("delay_s"):
            time.sleep(user["delay_s"])
        try:
            password = base64.b64decode(body.get("password") or "", validate=True).decode()
        except ValueError:
            self._send(400, b"password is not base64", "text/plain")
            return
        if user is None or user.get("password") != password or user.get("deny_reason"):
            reason = (user or {}).get("deny_reason") or 134
            self._send(403, {"reason": reason, "message": "credentials refused"})
            return
        self._allow(user)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", required=True)
    ap.add_argument("--tokens")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    with open(a.users) as f:
        srv.users = json.load(f)
    srv.tokens = {}
    if a.tokens:
        with open(a.tokens) as f:
            srv.tokens = json.load(f)
    srv.log_path = a.log
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.load_verify_locations(a.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
