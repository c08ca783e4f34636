#!/usr/bin/python3
"""Interop: the Eclipse Mosquitto command-line clients (mosquitto_pub,
mosquitto_sub, mosquitto_rr 2.0.11, Debian mosquitto-clients) against the
broker, over MQTT 3.1.1 and 5.0.

mosquitto_sub runs with -d so its "received SUBACK" debug line tells the test
when the subscription is in place (no sleeps), and with a -F format that
prints every field, v5 properties included, on one tab-separated line:

    MSG <topic> <qos> <retain> <payload hex> <content type> <expiry>
        <payload format> <response topic> <correlation data> <user props>

User properties print as "k:v k:v" in wire order, so the tests use keys
and values without spaces or colons.
"""

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "lib"))

from broker_fixture import BrokerTestCase, main, timeout  # noqa: E402

TOOLS = ("mosquitto_pub", "mosquitto_sub", "mosquitto_rr", "stdbuf")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
FIELDS = ("topic", "qos", "retain", "payload", "content_type", "expiry",
          "format", "response_topic", "correlation", "user")
FORMAT = "\t".join(["MSG", "%t", "%q", "%r", "%x", "%C", "%E", "%F", "%R",
                    "%D", "%P"])
V311 = "mqttv311"
V5 = "mqttv5"


class Msg(dict):
    __getattr__ = dict.__getitem__


def parse_line(line):
    parts = line.rstrip("\n").split("\t")
    if parts[0] != "MSG" or len(parts) != len(FIELDS) + 1:
        return None
    m = Msg(zip(FIELDS, parts[1:]))
    m["qos"] = int(m["qos"])
    m["retain"] = int(m["retain"])
    m["payload"] = bytes.fromhex(m["payload"])
    return m


class Sub:
    """A running mosquitto_sub, its messages in a queue."""

    def __init__(self, broker, topics, version=V311, qos=0, extra=()):
        # stdbuf: mosquitto_sub's stdout is block-buffered on a pipe, and
        # the test reacts to each line as it comes.
        argv = ["stdbuf", "-oL",
                "mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
                "-V", version, "-q", str(qos), "-d", "-F", FORMAT]
        for t in topics:
            argv += ["-t", t]
        argv += list(extra)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     bufsize=1)
        self.messages = queue.Queue()
        self.lines = []
        self.subacked = threading.Event()
        self.connack = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = parse_line(line)
            if m is not None:
                self.messages.put(m)
            elif "received CONNACK" in line:
                self.connack = line.strip()
            elif line.startswith("Subscribed (mid"):
                # Printed by the SUBACK callback, once it is fully handled.
                self.subacked.set()

    def wait_subscribed(self, timeout=5):
        if not self.subacked.wait(timeout):
            raise AssertionError("mosquitto_sub not subscribed within %ss:\n%s"
                                 % (timeout, "".join(self.lines)))
        return self

    def get(self, timeout=5, what="a message"):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("mosquitto_sub: %s not received within %ss; "
                                 "output:\n%s" % (what, timeout,
                                                  "".join(self.lines))) from None

    def get_n(self, n, timeout=5):
        deadline = time.monotonic() + timeout
        return [self.get(max(0.0, deadline - time.monotonic()),
                         "message %d of %d" % (i + 1, n)) for i in range(n)]

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGKILL, timeout=5):
        """Stop the process. SIGKILL drops the connection without a
        DISCONNECT. (A clean stop goes through -C, see
        MosquittoClientsTest.stop_clean: mosquitto_sub 2.0.11 disconnects
        from inside its signal handler, which can deadlock when the signal
        lands while it is handling a packet.)"""
        self.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2)
        self.proc.stdout.close()
        return self.proc.returncode


class MosquittoClientsTest(BrokerTestCase):
    VERSION = V311

    def setUp(self):
        super().setUp()
        if MISSING:
            self.skipTest("not installed: %s (apt-get install "
                          "mosquitto-clients)" % ", ".join(MISSING))
        self.t = "mc-%s-%s" % (self._testMethodName[5:20], uuid.uuid4().hex[:8])

    def sub(self, topics, qos=0, extra=(), version=None, broker=None,
            stoppable=False):
        """Start mosquitto_sub. stoppable=True adds a control topic and -C 1
        so that stop_clean() can make it exit with a normal DISCONNECT; the
        topics it serves then must not receive messages."""
        extra = list(extra)
        topics = list(topics)
        if stoppable:
            ctl = "%s/ctl-%s" % (self.t, uuid.uuid4().hex[:6])
            topics.append(ctl)
            extra += ["-C", "1"]
        s = Sub(broker or self.broker, topics, version or self.VERSION, qos,
                extra)
        s.ctl = ctl if stoppable else None
        s.ctl_broker = broker or self.broker
        self.addCleanup(s.stop, signal.SIGKILL)
        return s

    def stop_clean(self, s):
        """Make a stoppable mosquitto_sub DISCONNECT normally and exit."""
        self.pub(s.ctl, "stop", 1, broker=s.ctl_broker)
        try:
            rc = s.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("mosquitto_sub did not exit after -C 1")
        s._reader.join(2)
        s.proc.stdout.close()
        self.assertEqual(rc, 0, "".join(s.lines))
        self.assertIn("sending DISCONNECT", "".join(s.lines))

    def pub(self, topic, payload=None, qos=0, extra=(), version=None,
            broker=None, check=True):
        b = broker or self.broker
        argv = ["mosquitto_pub", "-h", b.host, "-p", str(b.port),
                "-V", version or self.VERSION, "-t", topic, "-q", str(qos)]
        if payload is None:
            argv.append("-n")
        else:
            argv += ["-m", payload]
        argv += list(extra)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d): %s%s" % (
                " ".join(argv), r.returncode, r.stdout, r.stderr))
        return r


class Common:
    def test_qos_0_1_2_delivery(self):
        s = self.sub([self.t + "/q"], qos=2).wait_subscribed()
        for qos in (0, 1, 2):
            self.pub(self.t + "/q", "payload-q%d" % qos, qos)
            m = s.get(what="QoS %d message" % qos)
            self.assertEqual((m.topic, m.payload, m.qos, m.retain),
                             (self.t + "/q", b"payload-q%d" % qos, qos, 0))

    def test_subscription_qos_caps_delivery_qos(self):
        s = self.sub([self.t + "/q"], qos=1).wait_subscribed()
        self.pub(self.t + "/q", "two", 2)
        m = s.get()
        self.assertEqual((m.payload, m.qos), (b"two", 1))

    def test_many_lines_in_order(self):
        s = self.sub([self.t + "/l"], qos=1).wait_subscribed()
        lines = ["line-%03d" % i for i in range(100)]
        b = self.broker
        r = subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port),
                            "-V", self.VERSION, "-t", self.t + "/l", "-q", "1",
                            "-l"], input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([m.payload.decode() for m in s.get_n(100, 10)], lines)

    def test_retained_set_receive_clear(self):
        self.pub(self.t + "/r", "kept", 1, ["-r"])
        s = self.sub([self.t + "/#"], qos=1).wait_subscribed()
        m = s.get(what="retained message")
        self.assertEqual((m.topic, m.payload, m.retain, m.qos),
                         (self.t + "/r", b"kept", 1, 1))
        # Clear with an empty retained message (-r -n).
        self.pub(self.t + "/r", None, 1, ["-r"])
        m = s.get(what="the clearing message")
        self.assertEqual((m.payload, m.retain), (b"", 0))
        late = self.sub([self.t + "/#"], qos=1).wait_subscribed()
        self.pub(self.t + "/sentinel", "s", 1)
        m = late.get()
        self.assertEqual(m.topic, self.t + "/sentinel",
                         "cleared retained message still delivered")

    def test_wildcards(self):
        plus = self.sub([self.t + "/+/temp"], qos=1).wait_subscribed()
        hash_ = self.sub([self.t + "/a/#"], qos=1).wait_subscribed()
        for topic in ("a/temp", "a/b/temp", "a", "z/temp", "end/temp"):
            self.pub(self.t + "/" + topic, topic, 1)
        self.assertEqual([m.topic for m in plus.get_n(3)],
                         [self.t + "/a/temp", self.t + "/z/temp",
                          self.t + "/end/temp"])
        self.assertEqual([m.topic for m in hash_.get_n(3)],
                         [self.t + "/a/temp", self.t + "/a/b/temp",
                          self.t + "/a"])

    @timeout(30)
    def test_sys_topics_not_matched_by_hash(self):
        # MQTT-4.7.2-1: '#' and '+' at the first level do not match topics
        # starting with '$'. $SYS statistics are published every second.
        b = self.start_broker(settings={"sys_interval": 1})
        everything = self.sub(["#"], broker=b).wait_subscribed()
        plus = self.sub(["+/#"], broker=b).wait_subscribed()
        sys_sub = self.sub(["$SYS/#"], broker=b).wait_subscribed()
        deadline = time.monotonic() + 10
        while True:     # a live (not retained) $SYS publication
            m = sys_sub.get(max(0.1, deadline - time.monotonic()),
                            "a live $SYS message")
            self.assertTrue(m.topic.startswith("$SYS/"), m.topic)
            if not m.retain:
                break
        self.pub(self.t + "/sentinel", "s", 1, broker=b)
        for s in (everything, plus):
            m = s.get(what="the sentinel")
            self.assertEqual(m.topic, self.t + "/sentinel",
                             "a $SYS topic matched a wildcard filter")

    def test_will_on_abnormal_disconnect(self):
        watch = self.sub([self.t + "/will"], qos=1).wait_subscribed()
        w = self.sub([self.t + "/idle"], extra=[
            "--will-topic", self.t + "/will", "--will-payload", "lost",
            "--will-qos", "1"]).wait_subscribed()
        w.stop(signal.SIGKILL)           # TCP closes without DISCONNECT
        m = watch.get(what="will message")
        self.assertEqual((m.topic, m.payload, m.qos), (self.t + "/will", b"lost", 1))

    def test_no_will_on_clean_disconnect(self):
        watch = self.sub([self.t + "/will"], qos=1).wait_subscribed()
        w = self.sub([self.t + "/idle"], extra=[
            "--will-topic", self.t + "/will", "--will-payload", "lost"],
            stoppable=True).wait_subscribed()
        self.stop_clean(w)               # normal DISCONNECT
        self.pub(self.t + "/will", "sentinel", 1)
        self.assertEqual(watch.get().payload, b"sentinel")

    def persistent_args(self, cid):
        return ["-c", "-i", cid]

    def test_persistent_session_offline_queue(self):
        cid = "mc-" + uuid.uuid4().hex[:12]
        s = self.sub([self.t + "/q"], qos=2, extra=self.persistent_args(cid),
                     stoppable=True).wait_subscribed()
        self.stop_clean(s)
        for i in range(3):
            self.pub(self.t + "/q", "queued-%d" % i, 1)
        self.pub(self.t + "/q", "queued-q2", 2)
        s2 = self.sub([self.t + "/q"], qos=2, extra=self.persistent_args(cid))
        got = [(m.payload, m.qos) for m in s2.get_n(4)]
        self.assertEqual(sorted(got), [(b"queued-0", 1), (b"queued-1", 1),
                                       (b"queued-2", 1), (b"queued-q2", 2)])
        self.assertEqual([p for p, q in got if q == 1],
                         [b"queued-0", b"queued-1", b"queued-2"])

    def test_clean_session_gets_no_backlog(self):
        cid = "mc-" + uuid.uuid4().hex[:12]
        s = self.sub([self.t + "/q"], qos=1, extra=self.persistent_args(cid),
                     stoppable=True).wait_subscribed()
        self.stop_clean(s)
        self.pub(self.t + "/q", "backlog", 1)
        s2 = self.sub([self.t + "/q"], qos=1, extra=["-i", cid]).wait_subscribed()
        self.pub(self.t + "/q", "fresh", 1)
        self.assertEqual(s2.get().payload, b"fresh")


class MosquittoClientsV311(Common, MosquittoClientsTest):
    VERSION = V311


class MosquittoClientsV5(Common, MosquittoClientsTest):
    VERSION = V5

    def persistent_args(self, cid):
        return ["-c", "-i", cid, "-x", "300"]

    def test_v5_properties_forwarded(self):
        s = self.sub([self.t + "/p"], qos=1).wait_subscribed()
        self.pub(self.t + "/p", "h\u00e9llo", 1, [
            "-D", "publish", "user-property", "zk", "v1",
            "-D", "publish", "user-property", "ak", "v2",
            "-D", "publish", "user-property", "zk", "v3",
            "-D", "publish", "content-type", "text/plain",
            "-D", "publish", "response-topic", self.t + "/reply",
            "-D", "publish", "correlation-data", "corr-17",
            "-D", "publish", "payload-format-indicator", "1",
            "-D", "publish", "message-expiry-interval", "120"])
        m = s.get()
        self.assertEqual(m.payload, "h\u00e9llo".encode())
        # Order and duplicate keys preserved (MQTT-3.3.2-17/-18).
        self.assertEqual(m.user, "zk:v1 ak:v2 zk:v3")
        self.assertEqual(m.content_type, "text/plain")
        self.assertEqual(m.response_topic, self.t + "/reply")
        self.assertEqual(m.correlation, "corr-17")
        self.assertEqual(m.format, "1")
        self.assertTrue(m.expiry.isdigit() and 115 <= int(m.expiry) <= 120,
                        "message expiry interval %r" % m.expiry)

    def test_v5_absent_properties_stay_absent(self):
        s = self.sub([self.t + "/p"], qos=1).wait_subscribed()
        self.pub(self.t + "/p", "plain", 1)
        m = s.get()
        self.assertEqual((m.content_type, m.expiry, m.format, m.response_topic,
                          m.correlation, m.user), ("", "", "", "", "", ""))

    def test_v5_will_with_properties(self):
        watch = self.sub([self.t + "/will"], qos=1).wait_subscribed()
        w = self.sub([self.t + "/idle"], extra=[
            "--will-topic", self.t + "/will", "--will-payload", "lost",
            "--will-qos", "1",
            "-D", "will", "content-type", "text/x-will",
            "-D", "will", "user-property", "why", "killed"]).wait_subscribed()
        w.stop(signal.SIGKILL)
        m = watch.get(what="will message")
        self.assertEqual((m.payload, m.content_type, m.user),
                         (b"lost", "text/x-will", "why:killed"))

    @timeout(30)
    def test_v5_session_expiry(self):
        # Session kept for -x seconds after disconnect, then discarded with
        # its queue (3.1.2.11.2).
        cid = "mc-" + uuid.uuid4().hex[:12]
        s = self.sub([self.t + "/q"], qos=1, extra=["-c", "-i", cid, "-x", "1"],
                     stoppable=True).wait_subscribed()
        self.stop_clean(s)
        self.pub(self.t + "/q", "expires-with-session", 1)
        # Wait past the 1 s expiry (the broker may check once a second).
        time.sleep(2.5)
        s2 = self.sub([self.t + "/q"], qos=1,
                      extra=["-c", "-i", cid, "-x", "60"]).wait_subscribed()
        self.pub(self.t + "/q", "fresh", 1)
        self.assertEqual(s2.get().payload, b"fresh",
                         "message queued for an expired session was delivered")

    def test_v5_request_response_with_mosquitto_rr(self):
        # mosquitto_rr sets Response Topic and Correlation Data, waits for
        # the reply on its response topic; paho-free responder here is a
        # mosquitto_sub + mosquitto_pub pair driven by the test.
        responder = self.sub([self.t + "/req"], qos=1).wait_subscribed()
        b = self.broker
        rr = subprocess.Popen(
            ["mosquitto_rr", "-h", b.host, "-p", str(b.port), "-q", "1",
             "-t", self.t + "/req", "-e", self.t + "/resp", "-m", "ping",
             "-D", "publish", "correlation-data", "rr-1", "-W", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: rr.poll() is None and rr.kill())
        req = responder.get(what="request from mosquitto_rr")
        self.assertEqual((req.payload, req.response_topic, req.correlation),
                         (b"ping", self.t + "/resp", "rr-1"))
        self.pub(req.response_topic, "pong", 1,
                 ["-D", "publish", "correlation-data", req.correlation])
        out, err = rr.communicate(timeout=10)
        self.assertEqual((rr.returncode, out.strip()), (0, "pong"), err)



if __name__ == "__main__":
    main()
