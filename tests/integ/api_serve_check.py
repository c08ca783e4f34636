#!/usr/bin/env python3
"""api_serve_check.py EP_API_SERVE: black-box check of the observability
endpoints. Starts the server on port 0, waits for /readyz by polling, runs
curl against /, /healthz, /readyz and /metrics, validates /metrics with
api_promcheck.py, stops the server with SIGTERM and requires a clean exit."""
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def curl(url, *args):
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args, url],
                       capture_output=True, text=True, timeout=10)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def main():
    if shutil.which("curl") is None:
        print("SKIPPED: curl is not installed")
        return 77
    srv = subprocess.Popen([sys.argv[1], "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    failed = 0
    try:
        line = srv.stdout.readline()
        port = int(line.split()[-1])
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            code, _ = curl(base + "/readyz")
            if code == 200:
                break
            if time.monotonic() > deadline:
                raise SystemExit("server never became ready")
            time.sleep(0.05)
        checks = [("/", 200, "/metrics"), ("/healthz", 200, "ok"),
                  ("/readyz", 200, '"status":"ready"'), ("/nope", 404, "Not Found")]
        for path, want, text in checks:
            code, body = curl(base + path)
            ok = code == want and text in body
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} GET {path} -> {code}")
        code, body = curl(base + "/metrics")
        r = subprocess.run([sys.executable, os.path.join(HERE, "api_promcheck.py"), "-"],
                           input=body, capture_output=True, text=True)
        print(r.stdout.strip())
        failed += r.returncode != 0 or "edgeplane_broker_messages_total" not in body
    finally:
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(timeout=10)
    if rc != 0:
        print(f"FAIL server exit status {rc}")
        failed += 1
    print(f"{5 - min(failed, 5)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
