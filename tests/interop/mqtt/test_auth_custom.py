#!/usr/bin/python3
"""Custom authentication (HTTPS callout, custom-auth API 0.5.0) through the
real broker, against custom_auth_server.py, with paho-mqtt (v3.1.1 and v5),
mosquitto_pub and raw packets.

Matrix: allowed; denied with the server's 403 reason (v5 CONNACK carries
it, 3.1.1 gets the mapped return code); server down -> the chain falls
through to the password file; server answers 422 (version mismatch) ->
denied; slow server -> timeout -> falls through; expiry 2 s -> the broker
closes the socket at that time without DISCONNECT; attributes from the
server used by an authorization rule (publish allowed and denied); the
callout bound full -> CONNACK 0x89 / 0x03; what the server receives
(password base64, the client's certificate chain over mutual TLS, the
configured header, the broker's own client certificate).
"""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "lib"))
sys.path.insert(0, HERE)
from auth_raw import Raw  # noqa: E402

try:
    import paho.mqtt.client as mqtt
    from pki import Pki
    PEERS = None
except ImportError as e:
    PEERS = str(e)

BINARY = os.environ.get("EP_BINARY")
PYTHON = "/usr/bin/python3"

USERS = {
    "alice": {"password": "wonderland",
              "attributes": {"role": "sensor", "building": "b1"}},
    "banned": {"password": "x", "deny_reason": 138},
    "short": {"password": "lived", "expiry_s": 2},
    "slow": {"password": "pw", "delay_s": 4},
    "tls-user": {"password": "secret", "attributes": {"building": "b7"}},
}

RULES = """rules:
  - principals:
      attributes:
        - {role: sensor}
    brokerResources:
      - method: Connect
      - method: Publish
        topics: ["sensors/{principal.attributes.building}/#"]
      - method: Subscribe
        topics: ["sensors/#"]
  - principals:
      usernames: [fallback, slow, short, tls-user]
    brokerResources:
      - method: Connect
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class AuthServer:
    def __init__(self, root, pki):
        self.log = os.path.join(root, "requests.jsonl")
        users = os.path.join(root, "users.json")
        with open(users, "w") as f:
            json.dump(USERS, f)
        pf = os.path.join(root, "auth.port")
        self.err = open(os.path.join(root, "auth-server.err"), "w+")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "custom_auth_server.py"), "--users", users,
             "--cert", pki.path("server.pem"), "--key", pki.path("server.key"),
             "--client-ca", pki.path("ca.pem"), "--port-file", pf, "--log", self.log],
            stdout=self.err, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(pf):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("auth server did not start: " + self.output())
            time.sleep(0.02)
        with open(pf) as f:
            self.port = int(f.read())

    def output(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class Broker:
    def __init__(self, root, pki, endpoint, timeout="2s", threads=8, max_pending=256):
        p = pki.path
        self.root = root
        passwd = os.path.join(root, "passwd")
        for user, pw in (("fallback", "pw"), ("slow", "pw")):
            r = subprocess.run([BINARY, "passwd", "--password-stdin", "--iterations", "1000",
                                passwd, user], input=pw + "\n", text=True, capture_output=True)
            if r.returncode != 0:
                raise AssertionError("edgeplane passwd failed: " + r.stderr)
        rules = os.path.join(root, "rules.yaml")
        with open(rules, "w") as f:
            f.write(RULES)
        conf = os.path.join(root, "broker.yaml")
        with open(conf, "w") as f:
            f.write(f"""authentication:
  - name: chain
    methods: [custom, password]
    password_file: {passwd}
    custom:
      endpoint: {endpoint}
      ca_file: {p('ca.pem')}
      client_cert: {p('broker-client.pem')}
      client_key: {p('broker-client.key')}
      headers: ["Authorization: Bearer test-token"]
      timeout: {timeout}
      threads: {threads}
      max_pending: {max_pending}
authorization:
  - name: rules
    rules_file: {rules}
listeners:
  - address: 127.0.0.1:0
    authentication: chain
    authorization: rules
  - address: 127.0.0.1:0
    authentication: chain
    authorization: rules
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}, client_ca: {p('ca.pem')},
           client_certs: optional}}
""")
        self.log = open(os.path.join(root, "broker.log"), "w+")
        self.proc = subprocess.Popen([BINARY, "broker", "--config", conf, "--log-level", "info"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        ports = []
        while len(ports) < 2:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("broker did not start:\n" + self.output())
            out = self.output()
            ports = [int(x.split(":")[1].split(" ")[0]) for x in out.split("listening on ")[1:]]
            time.sleep(0.05)
        self.port, self.tls_port = ports[0], ports[1]

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def paho_connack(port, user, password, version):
    """CONNACK code seen by paho-mqtt (reason code for v5, rc for 3.1.1)."""
    got = {}
    ev = threading.Event()

    def on_connect(client, userdata, flags, rc, props=None):
        got["rc"] = rc if isinstance(rc, int) else rc.value
        ev.set()
    c = mqtt.Client(client_id="paho-%s-%d" % (user, version), protocol=version)
    c.username_pw_set(user, password)
    c.on_connect = on_connect
    c.connect_async("127.0.0.1", port, keepalive=30)
    c.loop_start()
    try:
        if not ev.wait(15):
            raise AssertionError("no CONNACK")
    finally:
        c.disconnect()
        c.loop_stop()
    return got["rc"]


@unittest.skipIf(PEERS is not None or not BINARY, "peers missing: %s" % PEERS)
class CustomAuthTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ep-auth-custom-")
        cls.pki = Pki(cls.dir)
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        cls.pki.client("broker-client", cls.pki.ca, cls.pki.ca_key,
                       now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        cls.server = AuthServer(cls.dir, cls.pki)
        cls.endpoint = "https://127.0.0.1:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def broker(self, endpoint=None, **kw):
        b = Broker(tempfile.mkdtemp(dir=self.dir), self.pki, endpoint or self.endpoint, **kw)
        self.addCleanup(b.stop)
        return b

    def test_config_errors(self):
        conf = os.path.join(self.dir, "bad.yaml")
        with open(conf, "w") as f:
            f.write("""authentication:
  - name: c
    methods: [custom]
    custom:
      endpoint: http://127.0.0.1:1
      headers: ["NoColon"]
    x509_attributes:
      - name: a
        subject: "CN x"
        attributes: [nokv]
listeners:
  - address: 127.0.0.1:0
    authentication: c
""")
        r = subprocess.run([BINARY, "broker", "--config", conf], capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0)
        for where, what in (("5:17", "must start with https://"),
                            ("6:17", "a header must be 'Name: value'"),
                            ("9:18", "expected 'TYPE = value' pairs"),
                            ("10:22", "expected 'name=value'")):
            self.assertIn("bad.yaml:%s: " % where, r.stderr)
            self.assertIn(what, r.stderr)
        # allow_http makes the same endpoint acceptable
        with open(conf, "w") as f:
            f.write("""authentication:
  - name: c
    methods: [custom]
    custom: {endpoint: "http://127.0.0.1:1", allow_http: true}
listeners:
  - address: 127.0.0.1:0
    authentication: c
""")
        p = subprocess.Popen([BINARY, "broker", "--config", conf], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        warned = False
        try:
            line = ""
            deadline = time.monotonic() + 10
            while "listening on" not in line and time.monotonic() < deadline:
                line = p.stdout.readline()
                if "plain http" in line:
                    warned = True
            self.assertIn("listening on", line)
        finally:
            p.send_signal(signal.SIGTERM)
            out = p.communicate(timeout=10)[0]
        self.assertTrue(warned or "passwords travel in clear" in out)

    def test_allowed_and_denied_paho(self):
        b = self.broker()
        for v in (mqtt.MQTTv311, mqtt.MQTTv5):
            self.assertEqual(paho_connack(b.port, "alice", "wonderland", v), 0)
        self.assertEqual(paho_connack(b.port, "alice", "wrong", mqtt.MQTTv5), 0x86)
        self.assertEqual(paho_connack(b.port, "alice", "wrong", mqtt.MQTTv311), 4)
        # the server's 403 reason (138 Banned) reaches a v5 client as is
        self.assertEqual(paho_connack(b.port, "banned", "x", mqtt.MQTTv5), 138)
        self.assertEqual(paho_connack(b.port, "banned", "x", mqtt.MQTTv311), 5)
        # a user only the password file knows: custom decides (denies)
        self.assertEqual(paho_connack(b.port, "fallback", "pw", mqtt.MQTTv5), 0x86)

    def test_mosquitto_clients(self):
        if shutil.which("mosquitto_pub") is None:
            self.skipTest("mosquitto_pub missing")
        b = self.broker()
        for ver in ("mqttv311", "mqttv5"):
            ok = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-V", ver,
                                 "-u", "alice", "-P", "wonderland", "-t", "sensors/b1/t",
                                 "-m", "1", "-q", "1"], capture_output=True, text=True, timeout=20)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            bad = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-V",
                                  ver, "-u", "alice", "-P", "nope", "-t", "sensors/b1/t",
                                  "-m", "1"], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(bad.returncode, 0)
            # mosquitto_sub authenticated by the server; a denied publish
            # (other building) never reaches it, the allowed one does
            sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-V",
                                    ver, "-u", "alice", "-P", "wonderland", "-t", "sensors/#",
                                    "-q", "1", "-C", "1", "-W", "20", "-v", "-d"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                deadline = time.monotonic() + 15
                line = ""
                while "SUBACK" not in line and time.monotonic() < deadline:
                    line = sub.stdout.readline()
                    if not line and sub.poll() is not None:
                        break
                self.assertIn("SUBACK", line)
                for topic in ("sensors/b2/t", "sensors/b1/t"):
                    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-V",
                                    ver, "-u", "alice", "-P", "wonderland", "-t", topic, "-m",
                                    topic, "-q", "1"], capture_output=True, timeout=20, check=True)
                out = sub.communicate(timeout=20)[0]
            finally:
                if sub.poll() is None:
                    sub.kill()
                    sub.wait()
            self.assertIn("sensors/b1/t sensors/b1/t", out)
            self.assertNotIn("sensors/b2/t sensors/b2/t", out)

    def test_request_contents(self):
        b = self.broker()
        n = len(self.server.requests())
        r = Raw(b.port, "alice", "wonderland")
        self.assertEqual(r.connack, 0)
        r.close()
        req = self.server.requests()[n]
        self.assertEqual(req["path"], "/?api-version=0.5.0")
        self.assertEqual(req["body"]["type"], "connect")
        self.assertEqual(req["body"]["username"], "alice")
        self.assertEqual(base64.b64decode(req["body"]["password"]), b"wonderland")
        self.assertNotIn("certs", req["body"])
        self.assertEqual(req["headers"].get("Authorization"), "Bearer test-token")
        self.assertTrue(req["client_cert"], "the broker did not present its client certificate")
        # over mutual TLS the client's chain goes to the server as PEM
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        self.pki.client("tls-user", self.pki.ca, self.pki.ca_key, *self._validity())
        ctx.load_cert_chain(self.pki.path("tls-user.pem"), self.pki.path("tls-user.key"))
        r = Raw(b.tls_port, "tls-user", "secret", tls=ctx)
        self.assertEqual(r.connack, 0)
        r.close()
        req = self.server.requests()[-1]
        with open(self.pki.path("tls-user.pem")) as f:
            leaf = f.read().strip()
        self.assertTrue(req["body"]["certs"].startswith(leaf), req["body"].get("certs"))
        # leaf first, then up to the trusted root
        self.assertEqual(req["body"]["certs"].count("BEGIN CERTIFICATE"), 2)

    @staticmethod
    def _validity():
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    def test_server_down_falls_through(self):
        b = self.broker(endpoint="https://127.0.0.1:%d" % free_port())
        for v in (mqtt.MQTTv311, mqtt.MQTTv5):
            self.assertEqual(paho_connack(b.port, "fallback", "pw", v), 0)
        self.assertEqual(paho_connack(b.port, "fallback", "bad", mqtt.MQTTv5), 0x86)
        # only the callout server knows alice: the password file says no
        self.assertNotEqual(paho_connack(b.port, "alice", "wonderland", mqtt.MQTTv5), 0)
        self.assertIn("not reachable", b.output())

    def test_version_mismatch_422(self):
        b = self.broker(endpoint=self.endpoint + "/v04")
        r = Raw(b.port, "alice", "wonderland")
        self.assertEqual(r.connack, 0x87)
        r.close()
        r = Raw(b.port, "alice", "wonderland", v5=False)
        self.assertEqual(r.connack, 5)
        r.close()
        self.assertIn("it supports: 0.4.0", b.output())

    def test_slow_server_times_out_and_falls_through(self):
        b = self.broker(timeout="1s")
        r = Raw(b.port, "slow", "pw")
        self.assertEqual(r.connack, 0)  # accepted by the password file
        self.assertGreater(r.connack_time, 0.9)
        self.assertLess(r.connack_time, 3.5, "the callout was not cut at its timeout")
        r.close()
        self.assertIn("not reachable", b.output())

    def test_expiry_closes_connection(self):
        b = self.broker()
        for v5 in (True, False):
            r = Raw(b.port, "short", "lived", v5=v5)
            self.assertEqual(r.connack, 0)
            elapsed, packets = r.wait_end(10)
            r.close()
            self.assertGreater(elapsed, 1.5)
            self.assertLess(elapsed, 4.0)
            self.assertNotIn(0xE0, packets, "DISCONNECT sent on expiry")

    def test_attributes_in_authorization(self):
        b = self.broker()
        for v5 in (True, False):
            r = Raw(b.port, "alice", "wonderland", v5=v5)
            self.assertEqual(r.connack, 0)
            self.assertLess(r.publish("sensors/b1/temp", 1), 0x80)  # 0 or 0x10 no subscribers
            # denied: v5 PUBACK 0x87; 3.1.1 acks and drops
            self.assertEqual(r.publish("sensors/b2/temp", 2), 0x87 if v5 else 0)
            r.close()
        # the drop is real: a subscriber on sensors/# sees only b1
        sub = mqtt.Client(client_id="watcher", protocol=mqtt.MQTTv5)
        got = []
        ready = threading.Event()
        sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("sensors/#", 1)
        sub.on_subscribe = lambda *a: ready.set()
        sub.on_message = lambda c, u, m: got.append(m.topic)
        sub.username_pw_set("alice", "wonderland")
        sub.connect_async("127.0.0.1", b.port)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        self.assertTrue(ready.wait(10))
        r = Raw(b.port, "alice", "wonderland")
        r.publish("sensors/b2/x", 3)
        r.publish("sensors/b1/x", 4)
        r.close()
        deadline = time.monotonic() + 10
        while "sensors/b1/x" not in got and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(got, ["sensors/b1/x"])

    def test_busy_when_callouts_full(self):
        b = self.broker(timeout="6s", threads=1, max_pending=1)
        n = len(self.server.requests())
        slow = threading.Thread(target=lambda: Raw(b.port, "slow", "pw").close())
        slow.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                r["body"].get("username") == "slow" for r in self.server.requests()[n:]):
            time.sleep(0.02)
        r5 = Raw(b.port, "alice", "wonderland")
        r3 = Raw(b.port, "alice", "wonderland", v5=False)
        self.assertEqual(r5.connack, 0x89)
        self.assertEqual(r3.connack, 3)
        r5.close()
        r3.close()
        slow.join(20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
