#!/usr/bin/python3
"""Authentication and authorization through listener configuration, with
paho-mqtt (v3.1.1 and v5) and mosquitto clients.

Matrix: each method (password file, X.509 client certificate) x allowed /
denied x protocol version; authorization of CONNECT, PUBLISH (v5 PUBACK
0x87, 3.1.1 accepted and dropped, never delivered) and SUBSCRIBE (SUBACK
0x87 / 0x80) with {principal.username} and {principal.clientId}
substitution; hot reload of the rules file and of the password file; the
connection closed when the client certificate expires; a flood of failed
logins while authenticated clients keep being served (failed logins are
rate-limited per address).
"""
import os
import shutil
import ssl
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                os.pardir, "lib"))
from auth_raw import _s16 as s16, _vbi as vbi  # noqa: E402
from broker_fixture import main, timeout  # noqa: E402
from child_proc import LoggedProcess  # noqa: E402

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties  # noqa: F401
    from pki import Pki
    PEERS = None
except ImportError as e:
    PEERS = str(e)

BINARY = os.environ.get("EP_BINARY")

# A client refused during the TLS handshake makes paho's network thread
# print the alert; that refusal is what the test expects.
_default_hook = threading.excepthook
threading.excepthook = lambda a: None if isinstance(a.exc_value, ssl.SSLError) else _default_hook(a)

RULES = """rules:
  - principals:
      usernames: [alice, "x509-user"]
    brokerResources:
      - method: Connect
      - method: Publish
        topics: ["users/{principal.username}/#", "shared/#"]
      - method: Subscribe
        topics: ["users/{principal.username}/#", "shared/#"]
  - principals:
      usernames: [bob]
    brokerResources:
      - method: Connect
      - method: Subscribe
        topics: ["shared/#"]
"""


class Broker(LoggedProcess):
    def __init__(self, root, pki):
        self.root = root
        p = pki.path
        self.passwd = os.path.join(root, "passwd")
        self.rules = os.path.join(root, "rules.yaml")
        for user, pw in (("alice", "wonderland"), ("bob", "builder"), ("mallory", "x")):
            self.set_password(user, pw)
        with open(self.rules, "w") as f:
            f.write(RULES)
        conf = os.path.join(root, "broker.yaml")
        with open(conf, "w") as f:
            f.write(f"""authentication:
  - name: users
    password_file: {self.passwd}
    methods: [x509, password]
authorization:
  - name: rules
    rules_file: {self.rules}
listeners:
  - address: 127.0.0.1:0
    authentication: users
    authorization: rules
  - address: 127.0.0.1:0
    authentication: users
    authorization: rules
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}, client_ca: {p('ca.pem')},
           client_certs: optional}}
""")
        self.spawn([BINARY, "broker", "--config", conf, "--log-level", "info"],
                   os.path.join(root, "broker.log"))
        self.port, self.tls_port = self.wait_ports(2)

    def set_password(self, user, password):
        r = subprocess.run([BINARY, "passwd", "--password-stdin", "--iterations", "1000",
                            self.passwd, user], input=password + "\n", text=True,
                           capture_output=True)
        if r.returncode != 0:
            raise AssertionError("edgeplane passwd failed: " + r.stderr)


class Client:
    """A paho client that records CONNACK, acks and messages."""

    def __init__(self, port, user=None, password=None, version=mqtt.MQTTv5 if not PEERS else 0,
                 cid=None, tls=None):
        self.rc = None
        self.msgs = []
        self.acks = {}
        self.subacks = []
        self.cond = threading.Condition()
        self.version = version
        self.c = mqtt.Client(client_id=cid or "c-%d-%d" % (os.getpid(), id(self)),
                             protocol=version)
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(**tls)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect
        self.disconnected = threading.Event()
        self.c.connect_async("127.0.0.1", port, keepalive=30)
        self.c.loop_start()

    def _on_connect(self, client, userdata, flags, rc, props=None):
        with self.cond:
            self.rc = rc if isinstance(rc, int) else rc.value
            self.cond.notify_all()

    def _on_disconnect(self, *a):
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.msgs.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        with self.cond:
            self.subacks.append([g if isinstance(g, int) else g.value for g in granted])
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self.cond:
            self.acks[mid] = True
            self.cond.notify_all()

    def wait_connack(self, t=15):
        with self.cond:
            self.cond.wait_for(lambda: self.rc is not None, t)
        if self.rc is None:
            raise AssertionError("no CONNACK")
        return self.rc

    def subscribe(self, topic, qos=1):
        n = len(self.subacks)
        self.c.subscribe(topic, qos)
        with self.cond:
            self.cond.wait_for(lambda: len(self.subacks) > n, 10)
        return self.subacks[-1][0]

    def wait_msgs(self, n, t=10):
        with self.cond:
            self.cond.wait_for(lambda: len(self.msgs) >= n, t)
        return list(self.msgs)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def raw_publish_ack(port, user, password, topic, v5=True):
    """QoS 1 PUBLISH from a raw socket; returns the PUBACK reason code (0 for
    3.1.1, whose PUBACK has none)."""
    body = s16(b"MQTT") + bytes([5 if v5 else 4, 0xC2]) + (30).to_bytes(2, "big")
    if v5:
        body += b"\x00"
    body += s16(b"raw-" + user.encode()) + s16(user.encode()) + s16(password.encode())
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    s.sendall(b"\x10" + vbi(len(body)) + body)
    connack = s.recv(64)
    if connack[0] != 0x20 or connack[3] != 0:
        raise AssertionError("CONNACK refused: %r" % connack)
    pub = s16(topic.encode()) + b"\x00\x07" + (b"\x00" if v5 else b"") + b"payload"
    s.sendall(b"\x32" + vbi(len(pub)) + pub)
    ack = s.recv(64)
    s.close()
    if ack[0] != 0x40 or ack[2:4] != b"\x00\x07":
        raise AssertionError("expected PUBACK for id 7, got %r" % ack)
    return ack[4] if v5 and len(ack) > 4 and ack[1] > 2 else 0


@unittest.skipIf(PEERS is not None or not BINARY, "peers missing: %s" % PEERS)
class AuthTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ep-auth-")
        cls.pki = Pki(cls.dir)
        cls.pki.client("x509-user", cls.pki.ca, cls.pki.ca_key,
                       *cls._validity())

    @staticmethod
    def _validity():
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        # A broker per test: failed logins are rate-limited per source
        # address, and every test connects from 127.0.0.1.
        root = tempfile.mkdtemp(dir=self.dir)
        self.broker = Broker(root, self.pki)
        self.addCleanup(self.broker.stop)

    @timeout(60)
    def test_password_matrix(self):
        b = self.broker
        cases = [  # user, password, expected v5 rc, expected 3.1.1 rc
            ("alice", "wonderland", 0, 0),
            ("mallory", "x", 0x87, 5),      # authenticated, CONNECT not granted
            ("alice", "wrong", 0x86, 4),
            ("nobody", "wonderland", 0x86, 4),
            (None, None, 0x87, 5),          # no relevant method
        ]
        # The failures come last: after a few from one address the limiter
        # answers 0x9F (tested in test_failed_login_flood_keeps_serving).
        for user, pw, want5, want3 in cases:
            for version, want in ((mqtt.MQTTv5, want5), (mqtt.MQTTv311, want3)):
                c = Client(b.port, user, pw, version)
                rc = c.wait_connack()
                c.close()
                self.assertEqual(rc, want, "%s/%s v%s" % (user, pw, version))

    @timeout(60)
    def test_publish_and_subscribe_authorization(self):
        b = self.broker
        watcher = Client(b.port, "alice", "wonderland")
        self.assertEqual(watcher.wait_connack(), 0)
        self.assertEqual(watcher.subscribe("users/alice/#"), 1)
        self.assertEqual(watcher.subscribe("shared/#"), 1)
        # Substitution: alice may not subscribe to bob's tree.
        self.assertEqual(watcher.subscribe("users/bob/#"), 0x87)
        self.assertEqual(watcher.subscribe("#"), 0x87)
        for v5 in (True, False):
            # Allowed topic: PUBACK success and delivered.
            self.assertEqual(raw_publish_ack(b.port, "alice", "wonderland", "users/alice/ok", v5), 0)
            # bob may not publish at all: v5 0x87, 3.1.1 accepted silently.
            rc = raw_publish_ack(b.port, "bob", "builder", "shared/bob", v5)
            self.assertEqual(rc, 0x87 if v5 else 0)
        msgs = watcher.wait_msgs(2, 5)
        time.sleep(0.5)  # give a wrongly routed message time to show up
        topics = [m[0] for m in watcher.msgs]
        self.assertEqual(topics.count("users/alice/ok"), 2)
        self.assertNotIn("shared/bob", topics, "a denied PUBLISH was delivered")
        self.assertEqual(len(msgs), 2)
        bob3 = Client(b.port, "bob", "builder", mqtt.MQTTv311)
        self.assertEqual(bob3.wait_connack(), 0)
        self.assertEqual(bob3.subscribe("users/alice/#"), 0x80)  # 3.1.1 failure code
        self.assertEqual(bob3.subscribe("shared/#"), 1)
        bob3.close()
        watcher.close()

    @timeout(60)
    def test_x509_client_certificate(self):
        b = self.broker
        p = self.pki.path
        tls = {"ca_certs": p("ca.pem"), "certfile": p("x509-user.pem"),
               "keyfile": p("x509-user.key")}
        c = Client(b.tls_port, None, None, mqtt.MQTTv5, tls=tls)
        self.assertEqual(c.wait_connack(), 0)
        # The CN is the user name for authorization.
        self.assertEqual(c.subscribe("users/x509-user/#"), 1)
        self.assertEqual(c.subscribe("users/alice/#"), 0x87)
        c.close()
        # Over TLS without a certificate the password method applies.
        c = Client(b.tls_port, "alice", "wonderland", mqtt.MQTTv311,
                   tls={"ca_certs": p("ca.pem")})
        self.assertEqual(c.wait_connack(), 0)
        c.close()
        # A certificate from another CA fails the TLS handshake.
        c = Client(b.tls_port, None, None, mqtt.MQTTv5,
                   tls={"ca_certs": p("ca.pem"), "certfile": p("stranger.pem"),
                        "keyfile": p("stranger.key")})
        with c.cond:
            c.cond.wait_for(lambda: c.rc is not None, 3)
        self.assertIsNone(c.rc, "a certificate from an unknown CA was accepted")
        c.close()

    @timeout(60)
    def test_connection_closed_when_certificate_expires(self):
        p = self.pki.path
        self.pki.client_expiring("x509-user-short", 4)
        # Reuse the x509-user grants: the CN must match, so issue one with
        # that CN but a short life.
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        self.pki.client("x509-user", self.pki.ca, self.pki.ca_key,
                        now - datetime.timedelta(hours=1), now + datetime.timedelta(seconds=4))
        c = Client(self.broker.tls_port, None, None, mqtt.MQTTv5,
                   tls={"ca_certs": p("ca.pem"), "certfile": p("x509-user.pem"),
                        "keyfile": p("x509-user.key")})
        self.assertEqual(c.wait_connack(), 0)
        t0 = time.monotonic()
        self.assertTrue(c.disconnected.wait(15), "not closed when the certificate expired")
        self.assertGreater(time.monotonic() - t0, 1.0)
        c.c.loop_stop()
        self.pki.client("x509-user", self.pki.ca, self.pki.ca_key, *self._validity())

    @timeout(90)
    def test_hot_reload_of_rules_and_passwords(self):
        b = self.broker
        bob = Client(b.port, "bob", "builder")
        self.assertEqual(bob.wait_connack(), 0)
        self.assertEqual(bob.subscribe("users/bob/#"), 0x87)
        with open(b.rules, "w") as f:
            f.write(RULES.replace('topics: ["shared/#"]', 'topics: ["shared/#", "users/bob/#"]'))
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while bob.subscribe("users/bob/#") != 1:
            self.assertLess(time.monotonic(), deadline, "new rules not applied to a live client")
            time.sleep(0.2)
        bob.close()
        # A new password applies without a restart; the old one stops working.
        b.set_password("bob", "rebuilt")
        deadline = time.monotonic() + 10
        while True:
            c = Client(b.port, "bob", "rebuilt")
            rc = c.wait_connack()
            c.close()
            if rc == 0:
                break
            self.assertLess(time.monotonic(), deadline, "new password not picked up")
            time.sleep(0.3)
        c = Client(b.port, "bob", "builder")
        self.assertEqual(c.wait_connack(), 0x86)
        c.close()
        # Restore, and wait until the broker uses the restored files, so the
        # other tests see the initial state whatever their order.
        with open(b.rules, "w") as f:
            f.write(RULES)
        b.set_password("bob", "builder")
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            c = Client(b.port, "bob", "builder")
            rc = c.wait_connack()
            ok = rc == 0 and c.subscribe("users/bob/#") == 0x87
            c.close()
            if ok:
                break
            self.assertLess(time.monotonic(), deadline, "initial files not restored")
            time.sleep(0.3)

    @timeout(120)
    def test_failed_login_flood_keeps_serving(self):
        b = self.broker
        alice = Client(b.port, "alice", "wonderland")
        self.assertEqual(alice.wait_connack(), 0)
        self.assertEqual(alice.subscribe("users/alice/#"), 1)
        got_rate_limited = False
        # Failed logins in a burst: the limiter starts refusing quickly
        # (0x9F Connection rate exceeded) without checking the password.
        for i in range(200):
            c = Client(b.port, "alice", "bad-%d" % i)
            rc = c.wait_connack()
            c.close()
            self.assertIn(rc, (0x86, 0x9F))
            if rc == 0x9F:
                got_rate_limited = True
                break
        self.assertTrue(got_rate_limited, "failed logins were never rate-limited")
        # Oversize credentials are refused cleanly too.
        c = Client(b.port, "u" * 60000, "p" * 60000)
        self.assertIn(c.wait_connack(), (0x86, 0x87, 0x9F))
        c.close()
        # The authenticated client is still served, at full speed.
        for i in range(100):
            alice.c.publish("users/alice/live", b"%d" % i, qos=1)
        self.assertEqual(len(alice.wait_msgs(100, 15)), 100)
        self.assertIn("authentication of", b.output())
        alice.close()


if __name__ == "__main__":
    main()
