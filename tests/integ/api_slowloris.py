#!/usr/bin/env python3
"""api_slowloris.py HOST PORT CONNS DRIP_MS : opens CONNS connections that
each send a request head one byte every DRIP_MS milliseconds and never
finish it. Waits until the server has closed every one of them and prints

    slowloris: closed=N/CONNS max_seconds=S statuses=408,...

Exits 0 when all were closed (with or without a 408 answer), 1 otherwise
(after 60 s). The caller compares max_seconds with the server's head
timeout.
"""
import select
import socket
import sys
import time


def main():
    host, port, conns, drip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 4000
    socks = []
    for _ in range(conns):
        s = socket.create_connection((host, port))
        s.setblocking(False)
        socks.append({"s": s, "sent": 0, "closed": None, "data": b""})
    start = time.monotonic()
    print("slowloris: connected", flush=True)
    while time.monotonic() - start < 60:
        open_ = [c for c in socks if c["closed"] is None]
        if not open_:
            break
        for c in open_:
            if c["sent"] < len(head):
                try:
                    c["sent"] += c["s"].send(head[c["sent"]:c["sent"] + 1])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
        r, _, _ = select.select([c["s"] for c in open_], [], [], drip / 1000.0)
        for c in open_:
            if c["s"] in r:
                try:
                    d = c["s"].recv(4096)
                except ConnectionResetError:
                    d = b""
                if d:
                    c["data"] += d
                else:
                    c["closed"] = time.monotonic() - start
                    c["s"].close()
    closed = [c for c in socks if c["closed"] is not None]
    statuses = sorted({c["data"].split(b" ")[1].decode() if c["data"].startswith(b"HTTP/1.1 ")
                       else "none" for c in closed})
    worst = max((c["closed"] for c in closed), default=-1)
    print(f"slowloris: closed={len(closed)}/{conns} max_seconds={worst:.2f} "
          f"statuses={','.join(statuses)}", flush=True)
    return 0 if len(closed) == conns else 1


if __name__ == "__main__":
    sys.exit(main())
