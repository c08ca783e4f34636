"""broker_persist_lib.py - shared helpers of the broker persistence tests.

Broker: runs `edgeplane broker --data-dir` on a free port chosen at run time,
waits for readiness by connecting, stops it with SIGTERM or SIGKILL by pid.
Raw: a minimal raw-socket MQTT 3.1.1/5 client for the exchanges paho does
not let a test stop half-way (PUBREC sent but no PUBCOMP, a PUBLISH re-sent
with the same packet id after a restart).
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))
from child_proc import free_port  # noqa: E402


class Broker:
    def __init__(self, binary, data_dir, durability="sync", extra=None, log=None):
        self.binary = binary
        self.data_dir = data_dir
        self.durability = durability
        self.extra = extra or []
        self.port = free_port()
        self.proc = None
        self.log = log

    def start(self, timeout=30):
        args = [self.binary, "broker", "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                self.data_dir, "--durability", self.durability, "--log-level", "info"]
        args += self.extra
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=out, stderr=out)
        if self.log:
            out.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("broker exited with %s" % self.proc.returncode)
                if time.monotonic() > deadline:
                    raise RuntimeError("broker not ready after %ss" % timeout)
                time.sleep(0.01)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def sanitizer_report(self):
        """Sanitizer findings in the broker's log (ASan/UBSan builds), or ''."""
        if not self.log or not os.path.exists(self.log):
            return ""
        text = open(self.log, errors="replace").read()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer"):
            i = text.find(mark)
            if i >= 0:
                return text[i:i + 2000]
        return ""

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("broker did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


class Raw:
    """Blocking raw MQTT client: one packet at a time."""

    def __init__(self, port, v5=False):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.settimeout(5)
        self.v5 = v5
        self.buf = b""

    def send(self, ptype, flags, body):
        self.sock.sendall(bytes([(ptype << 4) | flags]) + _varint(len(body)) + body)

    def props(self, raw=b""):
        return _varint(len(raw)) + raw if self.v5 else b""

    def connect(self, cid, clean, expiry=None):
        flags = 0x02 if clean else 0
        props = b""
        if self.v5 and expiry is not None:
            props = b"\x11" + struct.pack(">I", expiry)
        body = _str("MQTT") + bytes([5 if self.v5 else 4, flags]) + struct.pack(">H", 60)
        body += self.props(props) + _str(cid)
        self.send(1, 0, body)
        t, f, b = self.recv()
        assert t == 2, "expected CONNACK, got %d" % t
        return b[0] & 1, b[1]  # session present, return code

    def subscribe(self, pid, topic, qos):
        self.send(8, 2, struct.pack(">H", pid) + self.props() + _str(topic) + bytes([qos]))
        t, f, b = self.recv()
        assert t == 9
        return b

    def publish(self, topic, payload, qos, pid=0, dup=False, retain=False):
        body = _str(topic) + (struct.pack(">H", pid) if qos else b"") + self.props() + payload
        self.send(3, (8 if dup else 0) | (qos << 1) | (1 if retain else 0), body)

    def ack(self, ptype, pid):
        self.send(ptype, 2 if ptype == 6 else 0, struct.pack(">H", pid))

    def recv(self, timeout=5):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n, mul, i = 0, 1, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    n += (b & 127) * mul
                    mul *= 128
                    i += 1
                    if not b & 128:
                        break
                else:
                    i = None
                if i is not None and len(self.buf) >= i + n:
                    h = self.buf[0]
                    body = self.buf[i:i + n]
                    self.buf = self.buf[i + n:]
                    return h >> 4, h & 15, body
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed by the broker")
            self.buf += d

    def parse_publish(self, flags, body):
        qos = (flags >> 1) & 3
        tl = struct.unpack(">H", body[:2])[0]
        topic = body[2:2 + tl].decode()
        off = 2 + tl
        pid = 0
        if qos:
            pid = struct.unpack(">H", body[off:off + 2])[0]
            off += 2
        if self.v5:
            n, mul = 0, 1
            while True:
                b = body[off]
                off += 1
                n += (b & 127) * mul
                mul *= 128
                if not b & 128:
                    break
            off += n
        return topic, qos, pid, bool(flags & 8), body[off:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
