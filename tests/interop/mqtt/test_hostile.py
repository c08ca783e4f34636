#!/usr/bin/python3
"""Hostile input: malformed, truncated, oversized and abusive traffic sent
to the broker over raw sockets, while a healthy paho-mqtt client publishes
and receives QoS 1 messages the whole time.

Every test checks three things:
  1. the broker reacts as MQTT 3.1.1 / 5.0 require (close the connection,
     with the v5 reason code where one is allowed, never a CONNACK or
     DISCONNECT the spec forbids);
  2. nothing from the hostile connection is delivered to anyone (a '#'
     watcher records every topic it sees);
  3. the healthy client kept working: in tearDown every message it
     published has been received exactly once and in order, and it was
     never disconnected; the broker process is still alive.

Spec rules used (MQTT 5.0 unless marked 3.1.1):
  - 4.13.1: on a Malformed Packet or Protocol Error the server closes the
    connection; for an error in CONNECT it MAY send CONNACK with the reason
    code first, for any other packet it SHOULD send DISCONNECT first.
  - MQTT-3.14.0-1: no DISCONNECT before a successful CONNACK.
  - 1.5.5: a Variable Byte Integer has at most 4 bytes.
  - 1.5.4 (MQTT-1.5.4-1/-2): ill-formed UTF-8 or U+0000 in a string is a
    Malformed Packet.
  - MQTT-3.8.1-1, MQTT-3.10.1-1, MQTT-3.6.1-1: reserved fixed-header flags
    of SUBSCRIBE / UNSUBSCRIBE / PUBREL must be 0010, anything else is
    malformed.
  - MQTT-3.1.0-1 / -2: the first packet must be CONNECT; a second CONNECT is
    a Protocol Error (0x82).
  - MQTT-3.3.2-2: no wildcards in a PUBLISH topic.
  - 3.2.2.3.6 / 4.13: a packet above the server's Maximum Packet Size is
    answered with DISCONNECT 0x95 (or a plain close).
"""

import os
import queue
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "lib"))

import mqtt_raw as raw  # noqa: E402
from broker_fixture import (BrokerTestCase, main, mosquitto_deviation,  # noqa: E402
                            timeout)
from paho_helper import V5, PahoClient, require_paho, unique  # noqa: E402

MiB = 1 << 20
LIMITS = {
    "max_packet_size": 1 * MiB,
    "max_queued_messages": 1000,
    "max_inflight": 20,
}
MAX_RL = 268435455          # the largest Remaining Length MQTT can encode

DISCONNECT = raw.DISCONNECT
CONNACK = raw.CONNACK


# Set by tests/interop/mqtt.cmake for ASan/UBSan builds of the broker.
SANITIZED = os.environ.get("EP_SANITIZED") == "1"


def vm_status(pid):
    """VmRSS, VmHWM (peak RSS) and VmPeak (peak virtual) in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM", "VmPeak"):
                out[key] = int(line.split()[1])
    return out


class Healthy:
    """A well-behaved paho v5 client: publishes a QoS 1 sequence to its own
    topic every 20 ms from a thread and receives it back."""

    def __init__(self, broker):
        self.topic = "healthy/" + unique("h")
        self.c = PahoClient(broker, protocol=V5)
        self.c.connect(keepalive=30)
        self.c.subscribe(self.topic, 1)
        self.sent = 0
        self.received = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.errors = []
        self.pub_thread = threading.Thread(target=self._publish, daemon=True)
        self.rx_thread = threading.Thread(target=self._receive, daemon=True)
        self.rx_thread.start()
        self.pub_thread.start()

    def _publish(self):
        while not self.stop.is_set():
            info = self.c.c.publish(self.topic, b"%d" % self.sent, 1)
            if info.rc != 0:
                self.errors.append("publish rc %s at seq %d" % (info.rc, self.sent))
                return
            with self.cond:
                self.sent += 1
            self.stop.wait(0.02)        # pacing of the load, not a sync

    def _receive(self):
        while True:
            m = self.c.messages.get()
            if m is None:
                return
            with self.cond:
                self.received.append(int(m.payload))
                self.cond.notify_all()

    def wait_progress(self, n=5, timeout=5.0):
        """At least n more messages arrive within timeout."""
        with self.cond:
            target = len(self.received) + n
            ok = self.cond.wait_for(lambda: len(self.received) >= target,
                                    timeout)
            have = len(self.received)
        if not ok:
            raise AssertionError(
                "healthy client starved: %d of %d messages in %.1f s "
                "(disconnected: %s)" % (have, target, timeout,
                                        self.c.disconnected.is_set()))

    def finish(self, timeout=10.0):
        """Stop publishing; every message must come back once, in order."""
        self.stop.set()
        self.pub_thread.join(2)
        with self.cond:
            sent = self.sent
            self.cond.wait_for(lambda: len(self.received) >= sent, timeout)
            got = list(self.received)
        self.c.messages.put(None)
        problems = list(self.errors)
        if self.c.disconnected.is_set():
            problems.append("healthy client was disconnected (rc=%s)"
                            % self.c.disconnect_rc)
        if got != list(range(sent)):
            missing = sorted(set(range(sent)) - set(got))
            problems.append("healthy stream damaged: sent %d, received %d, "
                            "missing %s, duplicates %d, in order %s"
                            % (sent, len(got), missing[:10],
                               len(got) - len(set(got)), got == sorted(got)))
        self.c.close()
        return problems


class Watcher:
    """A raw v5 subscriber on '#' that records every topic it receives."""

    def __init__(self, broker):
        self.r = raw.RawClient(broker.host, broker.port)
        self.r.handshake("watch-" + unique("w"))
        self.r.sub("#", 0)
        self.topics = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                p = self.r.recv(timeout=3600)
            except Exception:
                return
            if p.type == raw.PUBLISH:
                with self.cond:
                    self.topics.append(p.topic)
                    self.cond.notify_all()

    def sync(self, broker, timeout=5.0):
        """Publish a marker and wait for it: everything routed before it
        has reached the watcher."""
        marker = "sync/" + unique("m")
        with raw.RawClient(broker.host, broker.port) as c:
            c.handshake()
            c.send(raw.publish(marker, b"", 1, mid=1))
            c.recv_type(raw.PUBACK)
        with self.cond:
            if not self.cond.wait_for(lambda: marker in self.topics, timeout):
                raise AssertionError("watcher did not see the sync marker")

    def leaked(self, prefix="hostile"):
        with self.cond:
            return [t for t in self.topics if t.startswith(prefix)]

    def close(self):
        self.r.close()


class HostileBase(BrokerTestCase):
    limits = LIMITS

    def setUp(self):
        super().setUp()
        require_paho()
        self.start_broker(self.limits)
        self.rss_start = vm_status(self.broker.pid)
        self.healthy = Healthy(self.broker)
        self.watcher = Watcher(self.broker)
        self.addCleanup(self.watcher.close)
        self.healthy.wait_progress(3)

    def tearDown(self):
        problems = self.healthy.finish()
        if not self.broker.alive():
            problems.append("broker process died (status %s)"
                            % self.broker.proc.returncode)
        else:
            self.watcher.sync(self.broker)
            leaked = self.watcher.leaked()
            if leaked:
                problems.append("hostile messages were delivered: %s"
                                % leaked[:5])
        super().tearDown()
        if problems:
            self.fail("; ".join(problems))

    # -- helpers --------------------------------------------------------------
    def open_raw(self, version=raw.V5, **kw):
        r = raw.RawClient(self.broker.host, self.broker.port, version=version,
                          **kw)
        self.addCleanup(r.close)
        return r

    def connected_raw(self, version=raw.V5, **kw):
        r = self.open_raw(version, **kw)
        r.handshake("hostile-" + unique("c"))
        return r

    def assert_closed(self, r, allowed=(), timeout=3.0, what="connection"):
        """The broker closes r within timeout; any packets it sent first
        must be (type, reason code) pairs in allowed."""
        got = r.expect_closed(timeout)
        for p in got:
            self.assertIn((p.type, p.rc), set(allowed),
                          "%s: unexpected %r before close (allowed: %s)"
                          % (what, p, sorted(allowed)))
        return got

    def assert_healthy(self):
        self.assertTrue(self.broker.alive(), "broker died")
        self.healthy.wait_progress(5)


# Reactions allowed by the spec, by where the error happens.
PRE_CONNACK_MALFORMED = {(CONNACK, raw.RC_MALFORMED)}       # CONNECT errors
POST_CONNACK_MALFORMED_V5 = {(DISCONNECT, raw.RC_MALFORMED)}


class FramingTests(HostileBase):
    def test_truncated_packets_then_close(self):
        full_connect = raw.connect("trunc-" + unique("t"))
        pub = raw.publish("hostile/trunc", b"x" * 100, 1, mid=1)
        sub = raw.subscribe(1, [("hostile/#", 1)])
        cases = [
            ("CONNECT header only", [], full_connect[:2]),
            ("CONNECT half", [], full_connect[:len(full_connect) // 2]),
            ("CONNECT minus one byte", [], full_connect[:-1]),
            ("PUBLISH header only", [full_connect], pub[:2]),
            ("PUBLISH minus one byte", [full_connect], pub[:-1]),
            ("SUBSCRIBE half", [full_connect], sub[:len(sub) // 2]),
            ("lone remaining-length continuation", [full_connect], b"\x30\x80"),
        ]
        for name, prefix, data in cases:
            with self.subTest(name):
                r = self.open_raw()
                for p in prefix:
                    r.send(p)
                    r.recv_type(CONNACK)
                r.send(data)
                r.sock.shutdown(socket.SHUT_WR)    # then close our side
                got = self.assert_closed(r, what=name)
                self.assertEqual([p.type for p in got], [],
                                 "%s: nothing is owed to a truncated packet" % name)
        self.assert_healthy()

    def test_wrong_remaining_length(self):
        # CONNECT whose Remaining Length stops inside the payload: the
        # client identifier's length runs past the end -> malformed.
        c = raw.connect("rl-short-client-id")
        short = bytes([c[0], c[1] - 5]) + c[2:len(c) - 5]
        r = self.open_raw()
        r.send(short)
        self.assert_closed(r, PRE_CONNACK_MALFORMED, what="short CONNECT")

        # PUBLISH whose topic length claims more than the packet holds.
        r = self.connected_raw()
        body = raw.u16(200) + b"hostile/rl" + raw.properties(None) + b"p"
        r.send(raw.packet(raw.PUBLISH, 0, body))
        self.assert_closed(r, POST_CONNACK_MALFORMED_V5, what="topic overruns")

        # PUBACK with a Remaining Length too short for a packet identifier.
        r = self.connected_raw()
        r.send(b"\x40\x01\x00")
        self.assert_closed(r, POST_CONNACK_MALFORMED_V5, what="PUBACK rl 1")

        # 3.1.1: the same overrun is simply closed.
        r = self.connected_raw(raw.V311)
        body = raw.u16(300) + b"hostile/rl311"
        r.send(raw.packet(raw.PUBLISH, 0, body))
        self.assert_closed(r, (), what="3.1.1 topic overruns")
        self.assert_healthy()

    @mosquitto_deviation(
        "Mosquitto 2.0.11 accepts a PINGREQ with Remaining Length 2, treats "
        "the next two bytes as its body and answers PINGRESP, where the "
        "packet is malformed (3.12: PINGREQ has no variable header or payload)")
    def test_pingreq_with_body_is_malformed(self):
        r = self.connected_raw()
        r.send(b"\xc0\x02" + raw.pingreq())
        self.assert_closed(r, POST_CONNACK_MALFORMED_V5, what="PINGREQ rl 2")
        self.assert_healthy()

    def test_five_byte_variable_byte_integer(self):
        # 1.5.5: at most 4 bytes. Before CONNECT ...
        r = self.open_raw()
        r.send(b"\x10\x80\x80\x80\x80\x01")
        self.assert_closed(r, PRE_CONNACK_MALFORMED, what="5-byte rl before CONNECT")
        # ... after CONNECT, in the fixed header ...
        r = self.connected_raw()
        r.send(b"\x30\x80\x80\x80\x80\x01")
        self.assert_closed(r, POST_CONNACK_MALFORMED_V5, what="5-byte rl")
        # ... and inside a property (Subscription Identifier).
        r = self.connected_raw()
        body = (raw.u16(1) + raw.varint(6) + b"\x0b" + b"\x81\x80\x80\x80\x01"
                + raw.mqtt_str("hostile/varint") + b"\x01")
        r.send(raw.packet(raw.SUBSCRIBE, 2, body))
        self.assert_closed(r, POST_CONNACK_MALFORMED_V5,
                           what="5-byte subscription identifier")
        # ... and in a 3.1.1 session.
        r = self.connected_raw(raw.V311)
        r.send(b"\x30\xff\xff\xff\xff\x7f")
        self.assert_closed(r, (), what="3.1.1 5-byte rl")
        self.assert_healthy()

    @timeout(45)
    def test_256_mib_remaining_length_claim_is_refused_without_allocating(self):
        # A fixed header claiming the maximum Remaining Length (256 MiB)
        # against a 1 MiB Maximum Packet Size: the broker must refuse it
        # from the header alone. 16 such claims at once; if any of them
        # were buffered or allocated the broker's peak memory would show
        # gigabytes.
        before = vm_status(self.broker.pid)
        socks = []
        for i in range(8):                       # before CONNECT
            r = self.open_raw()
            r.send(b"\x10" + raw.varint(MAX_RL) + b"\x00\x04MQTT\x05")
            socks.append(("pre", r))
        for i in range(8):                       # after CONNECT, PUBLISH
            r = self.connected_raw()
            r.send(b"\x30" + raw.varint(MAX_RL) + raw.mqtt_str("hostile/big")
                   + b"\x00" + b"A" * 4096)
            socks.append(("post", r))
        for where, r in socks:
            t0 = time.monotonic()
            if where == "pre":
                allowed = {(CONNACK, raw.RC_PACKET_TOO_LARGE),
                           (CONNACK, raw.RC_MALFORMED)}
            else:
                allowed = {(DISCONNECT, raw.RC_PACKET_TOO_LARGE)}
            self.assert_closed(r, allowed, timeout=2.0, what="256 MiB claim " + where)
            self.assertLess(time.monotonic() - t0, 2.0)
        after = vm_status(self.broker.pid)
        print("[VmHWM %+d KiB, VmPeak %+d KiB] " % (
            after["VmHWM"] - before["VmHWM"], after["VmPeak"] - before["VmPeak"]),
            end="", flush=True)
        self.assertLess(after["VmHWM"] - before["VmHWM"], 32 * 1024,
                        "peak RSS grew: %s -> %s" % (before, after))
        self.assertLess(after["VmPeak"] - before["VmPeak"], 256 * 1024,
                        "peak virtual memory grew: %s -> %s" % (before, after))
        # 3.1.1 gets a plain close.
        r = self.connected_raw(raw.V311)
        r.send(b"\x30" + raw.varint(MAX_RL) + raw.mqtt_str("hostile/big311"))
        self.assert_closed(r, (), timeout=2.0, what="3.1.1 256 MiB claim")
        self.assert_healthy()

    def test_packet_just_over_maximum_packet_size(self):
        r = self.connected_raw()
        payload = b"B" * (LIMITS["max_packet_size"] + 1)
        r.try_send(raw.publish("hostile/over", payload, 0))
        self.assert_closed(r, {(DISCONNECT, raw.RC_PACKET_TOO_LARGE)},
                           what="PUBLISH over max_packet_size")
        self.assert_healthy()

    def test_connack_announces_maximum_packet_size(self):
        r = self.open_raw()
        ack = r.handshake("mps-" + unique("c"))
        self.assertEqual(ack.props.get("maximum_packet_size"),
                         LIMITS["max_packet_size"])


class EncodingTests(HostileBase):
    BAD_TOPICS = [
        ("invalid UTF-8 (lone continuation)", b"hostile/\x80x"),
        ("invalid UTF-8 (truncated sequence)", b"hostile/\xc3"),
        ("overlong encoding of '/'", b"hostile/\xc0\xaf"),
        ("UTF-16 surrogate U+D800", b"hostile/\xed\xa0\x80"),
        ("U+0000", b"hostile/a\x00b"),
    ]

    def _publish_raw_topic(self, r, topic, version, qos=0):
        body = raw.u16(len(topic)) + topic
        if qos:
            body += raw.u16(1)
        if version == raw.V5:
            body += raw.properties(None)
        r.send(raw.packet(raw.PUBLISH, qos << 1, body + b"payload"))

    def test_bad_utf8_and_nul_in_publish_topic(self):
        for version in (raw.V5, raw.V311):
            for name, topic in self.BAD_TOPICS:
                for qos in (0, 1):
                    with self.subTest(name, version=version, qos=qos):
                        r = self.connected_raw(version)
                        self._publish_raw_topic(r, topic, version, qos)
                        self.assert_closed(
                            r, POST_CONNACK_MALFORMED_V5 if version == raw.V5 else (),
                            what=name)
        self.assert_healthy()

    def test_bad_utf8_in_subscribe_filter(self):
        for name, topic in self.BAD_TOPICS:
            with self.subTest(name):
                r = self.connected_raw()
                body = (raw.u16(1) + raw.properties(None) + raw.u16(len(topic))
                        + topic + b"\x01")
                r.send(raw.packet(raw.SUBSCRIBE, 2, body))
                self.assert_closed(r, POST_CONNACK_MALFORMED_V5, what=name)
        self.assert_healthy()

    def test_bad_utf8_in_client_identifier(self):
        c = raw.connect("x")
        for name, cid in (("invalid UTF-8", b"\xff\xfe"), ("U+0000", b"a\x00b")):
            with self.subTest(name):
                body = c[2:-3] + raw.u16(len(cid)) + cid
                r = self.open_raw()
                r.send(raw.packet(raw.CONNECT, 0, body))
                self.assert_closed(r, PRE_CONNACK_MALFORMED |
                                   {(CONNACK, 0x85)},   # Client Identifier not valid
                                   what=name)
        self.assert_healthy()


class ProtocolTests(HostileBase):
    def test_reserved_flags_in_subscribe_unsubscribe_pubrel(self):
        cases = [
            ("SUBSCRIBE flags 0000", raw.subscribe(1, [("hostile/a", 1)], flags=0x0)),
            ("SUBSCRIBE flags 1010", raw.subscribe(1, [("hostile/a", 1)], flags=0xA)),
            ("SUBSCRIBE flags 0011", raw.subscribe(1, [("hostile/a", 1)], flags=0x3)),
            ("UNSUBSCRIBE flags 0000",
             bytes([0xA0]) + raw.unsubscribe(1, ["hostile/a"])[1:]),
            ("PUBREL flags 0000", b"\x60\x02\x00\x01"),
        ]
        for version in (raw.V5, raw.V311):
            for name, data in cases:
                if version == raw.V311 and name.startswith("SUBSCRIBE"):
                    data = bytes([data[0]]) + raw.subscribe(
                        1, [("hostile/a", 1)], version=raw.V311)[1:]
                with self.subTest(name, version=version):
                    r = self.connected_raw(version)
                    r.send(data)
                    got = self.assert_closed(
                        r, POST_CONNACK_MALFORMED_V5 if version == raw.V5 else (),
                        what=name)
                    self.assertNotIn(raw.SUBACK, [p.type for p in got])
        self.assert_healthy()

    @mosquitto_deviation(
        "Mosquitto 2.0.11 closes the connection on a second CONNECT without "
        "the DISCONNECT 0x82 that 4.13.1 says a server SHOULD send")
    def test_second_connect_is_protocol_error_v5(self):
        r = self.connected_raw()
        r.send(raw.connect("second-" + unique("c")))
        got = self.assert_closed(r, {(DISCONNECT, raw.RC_PROTOCOL_ERROR)},
                                 what="second CONNECT")
        # MQTT-3.1.0-2 plus 4.13.1: DISCONNECT 0x82 then close.
        self.assertEqual([(p.type, p.rc) for p in got],
                         [(DISCONNECT, raw.RC_PROTOCOL_ERROR)])
        self.assert_healthy()

    def test_second_connect_closes_v311(self):
        r = self.connected_raw(raw.V311)
        r.send(raw.connect("second-" + unique("c"), version=raw.V311))
        self.assert_closed(r, (), what="second CONNECT 3.1.1")
        self.assert_healthy()

    def test_publish_before_connect(self):
        for version in (raw.V5, raw.V311):
            for qos in (0, 1):
                with self.subTest(version=version, qos=qos):
                    r = self.open_raw(version)
                    r.send(raw.publish("hostile/early", b"x", qos,
                                       mid=1 if qos else None, version=version))
                    # MQTT-3.1.0-1; MQTT-3.14.0-1 forbids DISCONNECT here.
                    self.assert_closed(r, (), what="PUBLISH before CONNECT")
        for name, data in (("SUBSCRIBE", raw.subscribe(1, [("hostile/#", 0)])),
                           ("PINGREQ", raw.pingreq())):
            with self.subTest(name):
                r = self.open_raw()
                r.send(data)
                self.assert_closed(r, (), what=name + " before CONNECT")
        self.assert_healthy()

    def test_wildcard_in_publish_topic(self):
        allowed_v5 = {(DISCONNECT, raw.RC_MALFORMED),
                      (DISCONNECT, raw.RC_PROTOCOL_ERROR),
                      (DISCONNECT, raw.RC_TOPIC_NAME_INVALID)}
        for version in (raw.V5, raw.V311):
            for topic in ("hostile/+/x", "hostile/#", "+", "#", "hostile/a+"):
                for qos in (0, 1):
                    with self.subTest(topic, version=version, qos=qos):
                        r = self.connected_raw(version)
                        r.send(raw.publish(topic, b"x", qos,
                                           mid=1 if qos else None,
                                           version=version))
                        got = self.assert_closed(
                            r, allowed_v5 if version == raw.V5 else (),
                            what="wildcard topic %r" % topic)
                        self.assertNotIn(raw.PUBACK, [p.type for p in got])
        self.assert_healthy()

    def test_invalid_protocol_name_and_level(self):
        # 3.1.2.1/3.1.2.2: wrong protocol name -> close (MAY send CONNACK
        # 0x84 Unsupported Protocol Version for an unknown level).
        good = raw.connect("proto-" + unique("c"))
        bad_name = good.replace(b"\x00\x04MQTT", b"\x00\x04MQTX", 1)
        r = self.open_raw()
        r.send(bad_name)
        self.assert_closed(r, {(CONNACK, raw.RC_MALFORMED),
                               (CONNACK, raw.RC_PROTOCOL_ERROR),
                               (CONNACK, 0x84)}, what="protocol name MQTX")
        bad_level = good.replace(b"MQTT\x05", b"MQTT\x07", 1)
        r = self.open_raw()
        r.send(bad_level)
        self.assert_closed(r, {(CONNACK, 0x84), (CONNACK, 0x01)},
                           what="protocol level 7")
        self.assert_healthy()


HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                      os.pardir, "lib", "conn_holder.py")


class Holder:
    """tests/lib/conn_holder.py in a child process: thousands of idle
    connections without using the test process's descriptors."""

    def __init__(self, broker, count, every=0, partial=b""):
        self.proc = subprocess.Popen(
            [sys.executable, HOLDER, broker.host, str(broker.port), str(count),
             str(every), partial.hex()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())
        self.lines.put(None)

    def expect(self, word, timeout):
        """Next report whose first word is `word` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("connection holder: no %r within %.0f s"
                                     % (word, timeout)) from None
            if item is None:
                raise AssertionError("connection holder exited: %s"
                                     % self.proc.stderr.read())
            if item[0] == word:
                return item

    def first(self, timeout):
        """The next report, whatever it is."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class ResourceTests(HostileBase):
    @timeout(90)
    def test_half_open_connection_flood_does_not_starve_clients(self):
        # 2100 TCP connections that never send a byte, every 21st stopping
        # half-way through a CONNECT. The healthy client keeps its rate, and
        # a brand-new client still connects and round-trips.
        h = Holder(self.broker, 2100, 21, raw.connect("half")[:7])
        self.addCleanup(h.close)
        h.expect("open", 60)
        self.assert_healthy()
        fresh = PahoClient(self.broker, protocol=V5)
        self.addCleanup(fresh.close)
        fresh.connect(timeout=10)
        fresh.subscribe("fresh/x", 1)
        fresh.publish("fresh/x", b"still-serving", 1)
        self.assertEqual(fresh.get(10).payload, b"still-serving")
        self.assertTrue(self.broker.alive())
        h.close()
        self.assert_healthy()

    @timeout(60)
    def test_half_open_connections_closed_after_connect_timeout(self):
        # docs/broker.md: a connection that sends no CONNECT within
        # limits.connect_timeout is closed. Mosquitto 2.0.11 has no such
        # setting (a connection that never sends CONNECT is only dropped by
        # its default 60 s keep alive x 1.5), so the fixture skips this test
        # under Mosquitto.
        b = self.start_broker({"connect_timeout": 2000})
        h = Holder(b, 500, 5, raw.connect("slow")[:5])
        self.addCleanup(h.close)
        h.expect("open", 30)
        first = h.first(timeout=5.0)
        self.assertIsNotNone(first, "no silent connection closed within 5 s")
        self.assertEqual(first[0], "closed", first)
        self.assertGreaterEqual(float(first[2]), 1.0,
                                "silent connections closed before connect_timeout")
        done = h.expect("all-closed", timeout=5.0)
        self.assertLessEqual(float(done[1]), 2.0 + 3.0,
                             "silent connections outlived connect_timeout")
        self.assert_healthy()

    def test_max_connections(self):
        b = self.start_broker({"max_connections": 20})
        held = []
        for i in range(20):
            r = raw.RawClient(b.host, b.port)
            self.addCleanup(r.close)
            r.handshake("mc-%d" % i)
            held.append(r)
        extra = raw.RawClient(b.host, b.port)
        self.addCleanup(extra.close)
        extra.try_send(raw.connect("one-too-many"))
        # docs/broker.md: accepted and closed at once; a CONNECT racing past
        # the check gets CONNACK 0x89 Server busy (also allowed: 0x97).
        self.assert_closed(extra, {(CONNACK, 0x89), (CONNACK, raw.RC_QUOTA_EXCEEDED)},
                           what="connection over max_connections")
        for r in held[:3]:           # the admitted ones still work
            r.send(raw.pingreq())
            self.assertEqual(r.recv_type(raw.PINGRESP).type, raw.PINGRESP)
        self.assert_healthy()


class SlowSubscriberTests(HostileBase):
    """A subscriber that never reads while a publisher floods: the broker's
    memory stays bounded by its queue limits, and other subscribers keep
    receiving everything at full speed."""

    N = 50000
    PAYLOAD = b"F" * 1000
    BURST = 500
    # ~48 MiB per flood is addressed to the stalled reader; its queue limit
    # (1000 messages) plus the broker's per-connection output buffer must
    # keep the growth far below that.
    RSS_GROWTH_LIMIT_KIB = 16 * 1024

    def _fast_subscriber(self, topic, qos):
        r = self.open_raw()
        r.handshake("fast-" + unique("f"))
        r.sub(topic, qos)
        state = {"count": 0, "error": None}
        cond = threading.Condition()

        def run():
            while True:
                try:
                    p = r.recv(timeout=30)
                except Exception as e:      # closed at cleanup
                    state["error"] = e
                    with cond:
                        cond.notify_all()
                    return
                if p.type != raw.PUBLISH:
                    continue
                if p.qos == 1:
                    r.send(raw.puback(p.mid))
                with cond:
                    state["count"] += 1
                    cond.notify_all()

        threading.Thread(target=run, daemon=True).start()
        return state, cond

    def _flood(self, qos):
        topic = "flood/" + unique("q%d" % qos)
        slow = self.open_raw(rcvbuf=4096)
        slow.handshake("slow-" + unique("s"))
        slow.sub(topic, qos)                    # and never read again
        state, cond = self._fast_subscriber(topic, qos)
        pub = self.open_raw()
        ack = pub.handshake("flooder-" + unique("p"))
        window = min(ack.props.get("receive_maximum", 65535), 100)
        rss0 = vm_status(self.broker.pid)
        t0 = time.monotonic()
        sent = 0
        while sent < self.N:
            n = min(self.BURST, self.N - sent)
            if qos == 0:
                pub.send(b"".join(raw.publish(topic, self.PAYLOAD, 0)
                                  for _ in range(n)))
            else:
                # Respect the broker's Receive Maximum: at most `window`
                # unacknowledged QoS 1 PUBLISHes from us.
                outstanding = 0
                for i in range(n):
                    if outstanding == window:
                        pub.recv_type(raw.PUBACK)
                        outstanding -= 1
                    pub.send(raw.publish(topic, self.PAYLOAD, 1,
                                         mid=(sent + i) % 65535 + 1))
                    outstanding += 1
                for _ in range(outstanding):
                    ack = pub.recv_type(raw.PUBACK)
                    self.assertEqual(ack.rc, 0, "publisher refused: %r" % ack)
            sent += n
            # Other subscribers keep up: this burst reaches the fast
            # subscriber promptly although the slow one is stalled.
            with cond:
                ok = cond.wait_for(lambda: state["count"] >= sent, 10)
            self.assertTrue(ok, "fast subscriber stalled at %d of %d (%s)"
                            % (state["count"], sent, state["error"]))
        elapsed = time.monotonic() - t0
        rss1 = vm_status(self.broker.pid)
        growth = rss1["VmRSS"] - rss0["VmRSS"]
        if SANITIZED:
            # AddressSanitizer keeps freed memory in quarantine (256 MiB by
            # default), so RSS says nothing about the broker's own bounds
            # there; the normal build checks them.
            print("[RSS bound not checked under sanitizers: grew %d KiB] " % growth,
                  end="", flush=True)
            growth = 0
        self.assertLess(growth, self.RSS_GROWTH_LIMIT_KIB,
                        "broker RSS grew by %d KiB while %d x %d B went to a "
                        "stalled QoS %d subscriber (%s -> %s)"
                        % (growth, self.N, len(self.PAYLOAD), qos, rss0, rss1))
        self.assertEqual(state["count"], self.N)
        # The stalled reader is not disconnected: its messages are dropped
        # or queued within limits (docs/broker.md, max_outbuf / queue).
        self.assertTrue(slow.is_open_now(), "stalled subscriber was dropped")
        self.assert_healthy()
        print("[QoS %d flood: %d x %d B in %.1f s, broker RSS %+d KiB, peak "
              "RSS %d KiB] " % (qos, self.N, len(self.PAYLOAD), elapsed, growth,
                                rss1["VmHWM"]), end="", flush=True)
        return elapsed

    @timeout(90)
    def test_stalled_subscriber_qos0_flood(self):
        self._flood(0)

    @timeout(120)
    def test_stalled_subscriber_qos1_flood(self):
        self._flood(1)


if __name__ == "__main__":
    main()
