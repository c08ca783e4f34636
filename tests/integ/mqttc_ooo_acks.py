#!/usr/bin/python3
"""Out-of-order acknowledgements: a slow ack must not stall the window.

Usage: mqttc_ooo_acks.py --edgeplane PATH

This test talks to a tiny raw-socket fake MQTT server written here, on
purpose: no real broker acknowledges out of order on demand, so this is the
one place where a scripted server stands in for a broker. It plays only the
few packets involved (CONNECT/CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL,
PUBCOMP, DISCONNECT).

`edgeplane pub --repeat 20 -q 1|2` publishes to it while the server
  - grants a Receive Maximum of 4 (v5) or the client is limited with
    --max-inflight 4 (3.1.1),
  - withholds the acknowledgement of the first message (and, for QoS 2, the
    PUBCOMP of the second) and acknowledges every other one at once.
The client must send all 20 PUBLISH packets while the first is still
unacknowledged, never have more than 4 in flight, answer each PUBREC with a
PUBREL for that id, and exit 0 once the withheld acks finally arrive.
A PUBACK carrying a failure reason code must make `pub` exit 1.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttc_common as mc  # noqa: E402

args = mc.parse_args(need_broker=False)
mc.skip_unless_tools(args, [])
E = args.edgeplane
R = mc.Results("ooo-acks")
N = 20
WINDOW = 4

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
DISCONNECT = 14


class FakeServer:
    """One accepted connection, read packet by packet with a deadline."""

    def __init__(self, listener, timeout=10.0):
        self.sock, _ = listener.accept()
        self.sock.settimeout(timeout)
        self.buf = b""
        self.version = None

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("client closed the connection")
            self.buf += chunk

    def read(self):
        """Returns (type, flags, body)."""
        self._fill(2)
        mult, rl, i = 1, 0, 1
        while True:
            self._fill(i + 1)
            b = self.buf[i]
            rl += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._fill(i + rl)
        first, body = self.buf[0], self.buf[i:i + rl]
        self.buf = self.buf[i + rl:]
        return first >> 4, first & 0x0F, body

    def send(self, ptype, flags, body):
        rl, enc = len(body), b""
        while True:
            b = rl % 128
            rl //= 128
            enc += bytes([b | (0x80 if rl else 0)])
            if not rl:
                break
        self.sock.sendall(bytes([ptype << 4 | flags]) + enc + body)

    def handshake(self, receive_max=None):
        t, _, body = self.read()
        assert t == CONNECT, "expected CONNECT, got type %d" % t
        self.version = body[6]
        if self.version == 5:
            props = b""
            if receive_max:
                props = b"\x21" + struct.pack(">H", receive_max)
            self.send(CONNACK, 0, b"\x00\x00" + bytes([len(props)]) + props)
        else:
            self.send(CONNACK, 0, b"\x00\x00")

    def publish_id(self, flags, body):
        qos = (flags >> 1) & 3
        tlen = struct.unpack(">H", body[:2])[0]
        return qos, struct.unpack(">H", body[2 + tlen:4 + tlen])[0]

    def ack(self, ptype, pid, rc=0):
        flags = 2 if ptype == PUBREL else 0
        if self.version == 5:
            self.send(ptype, flags, struct.pack(">HBB", pid, rc, 0))
        else:
            self.send(ptype, flags, struct.pack(">H", pid))

    def close(self):
        self.sock.close()


def start_listener():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((mc.HOST, 0))
    ls.listen(4)
    return ls


def pub_proc(port, qos, version, extra=()):
    return mc.Proc([E, "pub", "-p", str(port), "-t", "ooo/t", "-q", str(qos), "-V", version,
                    "-m", "m{n}", "-c", "--repeat", str(N)] + list(extra))


def case_qos1(version):
    ls = start_listener()
    extra = ["--max-inflight", str(WINDOW)] if version == "3" else []
    pub = pub_proc(ls.getsockname()[1], 1, version, extra)
    srv = None
    try:
        srv = FakeServer(ls)
        srv.handshake(receive_max=WINDOW if version == "5" else None)
        unacked, max_inflight, seen = [], 0, 0

        def next_publish():
            t, flags, body = srv.read()
            assert t == PUBLISH, "expected PUBLISH, got type %d" % t
            return srv.publish_id(flags, body)[1]

        # Fill the window and acknowledge nothing: the client must stop at 4.
        for _ in range(WINDOW):
            unacked.append(next_publish())
            seen += 1
        srv.sock.settimeout(0.3)
        try:
            srv.read()
            extra_sent = True
        except socket.timeout:
            extra_sent = False
        srv.sock.settimeout(10.0)
        R.check("v%s q1: stops at a full window of %d" % (version, WINDOW), not extra_sent)
        # Now acknowledge all but the first, and then every new one at once
        # (one with "No matching subscribers", which is a success).
        held = unacked.pop(0)
        for pid in unacked:
            srv.ack(PUBACK, pid)
        unacked = [held]
        while seen < N:
            pid = next_publish()
            seen += 1
            unacked.append(pid)
            max_inflight = max(max_inflight, len(unacked))
            srv.ack(PUBACK, pid, 0x10 if seen == 7 and version == "5" else 0)
            unacked.remove(pid)
        R.check("v%s q1: all %d PUBLISH sent while the first is unacknowledged" % (version, N),
                held in unacked and seen == N)
        R.check("v%s q1: never more than %d in flight (saw %d)" % (version, WINDOW, max_inflight),
                max_inflight <= WINDOW)
        srv.ack(PUBACK, held)
        t, _, _ = srv.read()
        R.check("v%s q1: DISCONNECT after the last ack" % version, t == DISCONNECT,
                "type %d" % t)
        srv.close()
        rc, _, err = pub.finish()
        R.check("v%s q1: pub exits 0" % version, rc == 0, err.decode())
    finally:
        if srv:
            srv.close()
        pub.kill()
        ls.close()


def case_qos2(version):
    ls = start_listener()
    extra = ["--max-inflight", str(WINDOW)] if version == "3" else []
    pub = pub_proc(ls.getsockname()[1], 2, version, extra)
    srv = None
    try:
        srv = FakeServer(ls)
        srv.handshake(receive_max=WINDOW if version == "5" else None)
        order, inflight, max_inflight = [], set(), 0
        rec_sent, rel_seen = set(), []
        held_rec = held_comp = None
        published = 0
        while published < N or len(rel_seen) < len(rec_sent):
            t, flags, body = srv.read()
            if t == PUBLISH:
                _, pid = srv.publish_id(flags, body)
                published += 1
                order.append(pid)
                inflight.add(pid)
                max_inflight = max(max_inflight, len(inflight))
                if held_rec is None:
                    held_rec = pid  # no PUBREC for this one yet
                    continue
                srv.ack(PUBREC, pid)
                rec_sent.add(pid)
            elif t == PUBREL:
                pid = struct.unpack(">H", body[:2])[0]
                rel_seen.append(pid)
                if held_comp is None:
                    held_comp = pid  # no PUBCOMP for this one yet
                    continue
                srv.ack(PUBCOMP, pid)
                inflight.discard(pid)
            else:
                raise AssertionError("unexpected packet type %d" % t)
        R.check("v%s q2: all %d PUBLISH sent with one PUBREC and one PUBCOMP withheld"
                % (version, N), published == N and held_rec in inflight and held_comp in inflight)
        R.check("v%s q2: a PUBREL for exactly each PUBREC" % version,
                sorted(rel_seen) == sorted(rec_sent), "%r vs %r" % (rel_seen, rec_sent))
        R.check("v%s q2: never more than %d in flight (saw %d)" % (version, WINDOW, max_inflight),
                max_inflight <= WINDOW)
        srv.ack(PUBCOMP, held_comp)
        srv.ack(PUBREC, held_rec)
        t, _, body = srv.read()
        R.check("v%s q2: PUBREL for the late PUBREC" % version,
                t == PUBREL and struct.unpack(">H", body[:2])[0] == held_rec)
        srv.ack(PUBCOMP, held_rec)
        t, _, _ = srv.read()
        R.check("v%s q2: DISCONNECT after the last PUBCOMP" % version, t == DISCONNECT)
        srv.close()
        rc, _, err = pub.finish()
        R.check("v%s q2: pub exits 0" % version, rc == 0, err.decode())
    finally:
        if srv:
            srv.close()
        pub.kill()
        ls.close()


def case_refused():
    ls = start_listener()
    pub = mc.Proc([E, "pub", "-p", str(ls.getsockname()[1]), "-t", "ooo/t", "-q", "1", "-m", "x",
                   "--repeat", "3"])
    srv = None
    try:
        srv = FakeServer(ls)
        srv.handshake()
        ids = []
        for _ in range(3):
            t, flags, body = srv.read()
            ids.append(srv.publish_id(flags, body)[1])
        srv.ack(PUBACK, ids[2])
        srv.ack(PUBACK, ids[1], 0x87)  # Not authorized
        srv.ack(PUBACK, ids[0])
        t, _, _ = srv.read()
        srv.close()
        rc, _, err = pub.finish()
        R.check("refused: pub exits 1 and names the reason",
                rc == 1 and b"Not authorized" in err, "rc %d: %s" % (rc, err.decode()))
    finally:
        if srv:
            srv.close()
        pub.kill()
        ls.close()


R.case("qos1 v5", case_qos1, "5")
R.case("qos1 v3", case_qos1, "3")
R.case("qos2 v5", case_qos2, "5")
R.case("qos2 v3", case_qos2, "3")
R.case("refused", case_refused)
sys.exit(R.finish())
