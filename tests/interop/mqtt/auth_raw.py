"""A few raw MQTT packets for the authentication tests, where the exact
reason codes and the way a connection ends (a socket closed without
DISCONNECT) must be seen, which client libraries hide. Standard library
only."""
import socket
import time


def _s16(b):
    return len(b).to_bytes(2, "big") + b


def _vbi(n):
    out = b""
    while True:
        d = n % 128
        n //= 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def _read_packet(s):
    head = s.recv(1)
    if not head:
        return None
    n, mult = 0, 1
    while True:
        b = s.recv(1)
        if not b:
            return None
        n += (b[0] & 0x7F) * mult
        mult *= 128
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return head[0], body


class Raw:
    """One MQTT connection. connack is the CONNACK reason (v5) or return
    code (3.1.1), or None when the broker closed without a CONNACK."""

    def __init__(self, port, user=None, password=None, v5=True, cid=None, tls=None,
                 timeout=15):
        raw = socket.create_connection(("127.0.0.1", port), timeout)
        self.s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        self.s.settimeout(timeout)
        self.v5 = v5
        flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
        body = _s16(b"MQTT") + bytes([5 if v5 else 4, flags]) + (60).to_bytes(2, "big")
        if v5:
            body += b"\x00"
        body += _s16((cid or "raw-%d" % id(self)).encode())
        if user is not None:
            body += _s16(user.encode())
        if password is not None:
            body += _s16(password.encode())
        self.t0 = time.monotonic()
        self.s.sendall(b"\x10" + _vbi(len(body)) + body)
        p = _read_packet(self.s)
        self.connack_time = time.monotonic() - self.t0
        self.connack = p[1][1] if p and p[0] == 0x20 else None

    def publish(self, topic, pid=7):
        """QoS 1 PUBLISH; returns the PUBACK reason (0 for 3.1.1)."""
        pub = _s16(topic.encode()) + pid.to_bytes(2, "big") + (b"\x00" if self.v5 else b"")
        pub += b"payload"
        self.s.sendall(b"\x32" + _vbi(len(pub)) + pub)
        p = _read_packet(self.s)
        if p is None or p[0] != 0x40 or p[1][:2] != pid.to_bytes(2, "big"):
            raise AssertionError("expected PUBACK for id %d, got %r" % (pid, p))
        return p[1][2] if self.v5 and len(p[1]) > 2 else 0

    def wait_end(self, timeout):
        """Waits until the broker ends the connection; returns (seconds since
        CONNECT, packets received before the end)."""
        self.s.settimeout(timeout)
        got = []
        try:
            while True:
                p = _read_packet(self.s)
                if p is None:
                    break
                got.append(p[0])
        except (ConnectionResetError, OSError):
            pass
        return time.monotonic() - self.t0, got

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
