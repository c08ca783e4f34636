#!/usr/bin/python3
"""Hold many idle TCP connections to a broker from a separate process.

    conn_holder.py HOST PORT COUNT [PARTIAL_EVERY HEX_BYTES]

Opens COUNT connections that send nothing (every PARTIAL_EVERY-th one
sends HEX_BYTES, e.g. the start of a CONNECT, and then goes quiet), prints
"open COUNT", then reports each time the broker closes some of them:
"closed N ELAPSED" (N so far, ELAPSED seconds since "open"). It exits when
its stdin closes or every connection is closed ("all-closed ELAPSED").

A separate process keeps thousands of descriptors out of the test process,
whose clients (paho 1.6.1 uses select()) cannot use descriptors >= 1024.
"""

import selectors
import socket
import sys
import time


def main(argv):
    host, port, count = argv[1], int(argv[2]), int(argv[3])
    every = int(argv[4]) if len(argv) > 4 else 0
    partial = bytes.fromhex(argv[5]) if len(argv) > 5 else b""
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(count):
        s = socket.create_connection((host, port), timeout=10)
        if every and i % every == 0:
            s.sendall(partial)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    sel.register(sys.stdin, selectors.EVENT_READ)
    print("open %d" % count, flush=True)
    t0 = time.monotonic()
    closed = 0
    while closed < count:
        newly = 0
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is sys.stdin:
                if not sys.stdin.buffer.read1(4096):
                    return 0
                continue
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:           # EOF: the broker closed it
                sel.unregister(s)
                s.close()
                closed += 1
                newly += 1
        if newly:
            print("closed %d %.3f" % (closed, time.monotonic() - t0), flush=True)
    print("all-closed %.3f" % (time.monotonic() - t0), flush=True)
    sys.stdin.read()               # stay until told to go
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
