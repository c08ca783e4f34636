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

MQTT 5 enhanced authentication through the callout ({"type":"auth"} form,
authenticationMethod and base64 authenticationData): paho v5 CONNECT with
an Authentication Method accepted (CONNACK echoes the method) and denied
with the server's reason; re-authentication (raw AUTH 0x19, which paho
1.6 cannot send): accepted -> AUTH Success, the new expiry and attributes
replace the old ones; denied -> DISCONNECT with the reason (0x87 when the
server's code is not a DISCONNECT code); server failing -> AUTH 0x18
ContinueAuthentication, and a later AUTH 0x18 completes it; the
connection reads nothing while the server is asked. The callout metrics
on /metrics move with each outcome.
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
from auth_raw import Raw, _read_packet, _s16, _vbi  # noqa: E402
from child_proc import LoggedProcess, free_port  # noqa: E402

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

METHOD = "custom-token"
TOKENS = {
    "tok-b1-short": {"attributes": {"role": "sensor", "building": "b1"}, "expiry_s": 2},
    "tok-b2": {"attributes": {"role": "sensor", "building": "b2"}, "expiry_s": 3600},
    "tok-b2-slow": {"attributes": {"role": "sensor", "building": "b2"}, "delay_s": 1},
    "tok-banned": {"deny_reason": 138},
    "tok-quota": {"deny_reason": 0x97},
    "tok-failing": {"status": 503},
    "tok-slow": {"delay_s": 3},
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


class AuthServer(LoggedProcess):
    def __init__(self, root, pki):
        self.requests_log = os.path.join(root, "requests.jsonl")
        users = os.path.join(root, "users.json")
        with open(users, "w") as f:
            json.dump(USERS, f)
        tokens = os.path.join(root, "tokens.json")
        with open(tokens, "w") as f:
            json.dump(TOKENS, f)
        pf = os.path.join(root, "auth.port")
        self.spawn(
            [PYTHON, os.path.join(HERE, "custom_auth_server.py"), "--users", users, "--tokens", tokens,
             "--cert", pki.path("server.pem"), "--key", pki.path("server.key"),
             "--client-ca", pki.path("ca.pem"), "--port-file", pf, "--log", self.requests_log],
            os.path.join(root, "auth-server.err"))
        deadline = time.monotonic() + 10
        while not os.path.exists(pf):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("auth server did not start: " + self.output())
            time.sleep(0.02)
        with open(pf) as f:
            self.port = int(f.read())

    def requests(self):
        if not os.path.exists(self.requests_log):
            return []
        with open(self.requests_log) as f:
            return [json.loads(line) for line in f if line.strip()]


class Broker(LoggedProcess):
    def __init__(self, root, pki, endpoint, timeout="2s", threads=8, max_pending=256,
                 http=False):
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
        cmd = [BINARY, "broker", "--config", conf, "--log-level", "info"]
        self.http = free_port() if http else None
        if http:
            cmd += ["--http", "127.0.0.1:%d" % self.http]
        self.spawn(cmd, os.path.join(root, "broker.log"))
        self.port, self.tls_port = self.wait_ports(2)

    def metrics(self):
        """{(name, labels text): value} from /metrics."""
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out


def run_until_connack(c, ev):
    """Runs paho client c until its on_connect set ev, then disconnects."""
    c.loop_start()
    try:
        if not ev.wait(15):
            raise AssertionError("no CONNACK")
    finally:
        c.disconnect()
        c.loop_stop()


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
    run_until_connack(c, ev)
    return got["rc"]


def _props(body):
    """Properties at the start of body: (dict id -> raw value bytes, rest)."""
    n, mult, i = 0, 1, 0
    while True:
        n += (body[i] & 0x7F) * mult
        mult *= 128
        i += 1
        if not body[i - 1] & 0x80:
            break
    props, p = {}, body[i:i + n]
    while p:
        pid = p[0]
        fixed = {0x24: 1, 0x25: 1, 0x28: 1, 0x29: 1, 0x2A: 1, 0x13: 2, 0x21: 2, 0x22: 2,
                 0x11: 4, 0x27: 4}
        if pid in fixed:
            props[pid], p = p[1:1 + fixed[pid]], p[1 + fixed[pid]:]
        elif pid in (0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F):  # 2-byte length
            ln = int.from_bytes(p[1:3], "big")
            props[pid], p = p[3:3 + ln], p[3 + ln:]
        elif pid == 0x26:  # user property
            ln = int.from_bytes(p[1:3], "big")
            ln2 = int.from_bytes(p[3 + ln:5 + ln], "big")
            p = p[5 + ln + ln2:]
        else:
            raise AssertionError("unexpected property 0x%02x" % pid)
    return props, body[i + n:]


class Enhanced(Raw):
    """A raw MQTT 5 connection using enhanced authentication (METHOD)."""

    def __init__(self, port, token, cid=None, method=METHOD):
        self.s = socket.create_connection(("127.0.0.1", port), 15)
        self.s.settimeout(15)
        self.v5 = True
        self.method = method
        props = b"\x15" + _s16(method.encode()) + b"\x16" + _s16(token.encode())
        body = _s16(b"MQTT") + bytes([5, 0x02]) + (60).to_bytes(2, "big")
        body += _vbi(len(props)) + props + _s16((cid or "enh-%d" % id(self)).encode())
        self.t0 = time.monotonic()
        self.s.sendall(b"\x10" + _vbi(len(body)) + body)
        p = _read_packet(self.s)
        self.connack = p[1][1] if p and p[0] == 0x20 else None
        self.connack_props = _props(p[1][2:])[0] if p and p[0] == 0x20 else {}

    def send_auth(self, rc, token):
        props = b"\x15" + _s16(self.method.encode()) + b"\x16" + _s16(token.encode())
        body = bytes([rc]) + _vbi(len(props)) + props
        self.s.sendall(b"\xf0" + _vbi(len(body)) + body)

    def next(self):
        """(packet type nibble, reason, properties) of the next packet, or None."""
        p = _read_packet(self.s)
        if p is None:
            return None
        kind = p[0] >> 4
        if kind in (14, 15) and p[1]:  # DISCONNECT, AUTH
            return kind, p[1][0], _props(p[1][1:])[0] if len(p[1]) > 1 else {}
        return kind, None, {}

    def ping(self):
        self.s.sendall(b"\xc0\x00")


def paho_enhanced(port, token):
    """(CONNACK reason, CONNACK properties) for a paho v5 client using METHOD."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    got = {}
    ev = threading.Event()

    def on_connect(client, userdata, flags, rc, props=None):
        got["rc"], got["props"] = rc.value, props
        ev.set()
    c = mqtt.Client(client_id="paho-enh-%s" % token, protocol=mqtt.MQTTv5)
    c.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.AuthenticationMethod = METHOD
    props.AuthenticationData = token.encode()
    c.connect_async("127.0.0.1", port, keepalive=30, properties=props)
    run_until_connack(c, ev)
    return got["rc"], got["props"]


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

    def test_enhanced_connect_paho(self):
        b = self.broker()
        n = len(self.server.requests())
        rc, props = paho_enhanced(b.port, "tok-b2")
        self.assertEqual(rc, 0)
        self.assertEqual(getattr(props, "AuthenticationMethod", None), METHOD)
        req = self.server.requests()[n]["body"]
        self.assertEqual(req, {"type": "auth", "authenticationMethod": METHOD,
                               "authenticationData": base64.b64encode(b"tok-b2").decode()})
        # denied with the server's reason (138 Banned), or 135 for an unknown token
        self.assertEqual(paho_enhanced(b.port, "tok-banned")[0], 138)
        self.assertEqual(paho_enhanced(b.port, "tok-nobody")[0], 135)
        # a method without a token: the server decides (denies), not 0x8C
        r = Enhanced(b.port, "", method="other-method")
        self.assertEqual(r.connack, 135)
        r.close()

    def test_reauth(self):
        b = self.broker()
        r = Enhanced(b.port, "tok-b1-short")
        self.assertEqual(r.connack, 0)
        self.assertEqual(r.connack_props.get(0x15), METHOD.encode())
        self.assertLess(r.publish("sensors/b1/x", 1), 0x80)
        # accepted: AUTH Success; building b2 and no 2 s expiry any more
        r.send_auth(0x19, "tok-b2")
        self.assertEqual(r.next()[:2], (15, 0x00))
        self.assertEqual(r.publish("sensors/b1/x", 2), 0x87)
        self.assertLess(r.publish("sensors/b2/x", 3), 0x80)
        time.sleep(2.5)  # past the first expiry: must still be connected
        r.ping()
        self.assertEqual(r.next()[0], 13, "closed at the replaced expiry")
        # the connection reads nothing while the server is asked: the
        # PINGREQ sent right after the AUTH is answered after it
        r.send_auth(0x19, "tok-b2-slow")
        r.ping()
        self.assertEqual(r.next()[:2], (15, 0x00))
        self.assertEqual(r.next()[0], 13)
        # server failing: ContinueAuthentication, then AUTH 0x18 completes it
        r.send_auth(0x19, "tok-failing")
        self.assertEqual(r.next()[:2], (15, 0x18))
        r.send_auth(0x19, "tok-b2")  # 0x19 while the exchange is open: protocol error
        self.assertEqual(r.next()[:2], (14, 0x82))
        r.close()
        r = Enhanced(b.port, "tok-b2")
        r.send_auth(0x19, "tok-failing")
        self.assertEqual(r.next()[:2], (15, 0x18))
        r.send_auth(0x18, "tok-b2")
        self.assertEqual(r.next()[:2], (15, 0x00))
        # denied: DISCONNECT with the server's reason when it is a
        # DISCONNECT code (0x97 Quota exceeded), else 0x87; then the socket
        # closes
        r.send_auth(0x19, "tok-quota")
        kind, rc, props = r.next()
        self.assertEqual((kind, rc), (14, 0x97))
        self.assertEqual(props.get(0x1F), b"denied: token refused")
        self.assertIsNone(r.next())
        r.close()
        r = Enhanced(b.port, "tok-b2")
        r.send_auth(0x19, "tok-banned")
        self.assertEqual(r.next()[:2], (14, 0x87))
        r.close()
        # a shorter expiry replaces a longer one too: the socket closes at
        # it, without DISCONNECT
        r = Enhanced(b.port, "tok-b2")
        r.send_auth(0x19, "tok-b1-short")
        t0 = time.monotonic()
        self.assertEqual(r.next()[:2], (15, 0x00))
        r.t0 = t0
        elapsed, packets = r.wait_end(10)
        r.close()
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 4.0)
        self.assertNotIn(0xE0, packets)
        # a client the callout did not authenticate with a method cannot
        # re-authenticate through it
        r = Raw(b.port, "alice", "wonderland")
        self.assertEqual(r.connack, 0)
        r.method = METHOD
        Enhanced.send_auth(r, 0x19, "tok-b2")
        self.assertEqual(Enhanced.next(r)[:2], (14, 0x82))
        r.close()

    def test_callout_metrics(self):
        b = self.broker(timeout="1s", http=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                m0 = b.metrics()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        lab = '{chain="chain"}'

        def val(m, name, extra=""):
            key = name + ('{chain="chain"%s}' % extra if extra else lab)
            self.assertIn(key, m)
            return m[key]
        self.assertEqual(val(m0, "edgeplane_broker_auth_callout_pending"), 0)
        Raw(b.port, "alice", "wonderland").close()          # allowed
        Raw(b.port, "alice", "wrong").close()               # denied
        Enhanced(b.port, "tok-b2").close()                  # allowed (auth form)
        Enhanced(b.port, "tok-failing").close()             # unavailable (503)
        Enhanced(b.port, "tok-slow").close()                # unavailable, timeout
        m1 = b.metrics()
        delta = {k: val(m1, *k) - val(m0, *k) for k in (
            ("edgeplane_broker_auth_callout_requests_total",),
            ("edgeplane_broker_auth_callout_results_total", ',result="allowed"'),
            ("edgeplane_broker_auth_callout_results_total", ',result="denied"'),
            ("edgeplane_broker_auth_callout_results_total", ',result="unavailable"'),
            ("edgeplane_broker_auth_callout_timeouts_total",),
            ("edgeplane_broker_auth_callout_rejected_total",),
            ("edgeplane_broker_auth_callout_duration_seconds_count",))}
        self.assertEqual(list(delta.values()), [5, 2, 1, 2, 1, 0, 5], delta)
        self.assertGreater(val(m1, "edgeplane_broker_auth_callout_duration_seconds_sum") -
                           val(m0, "edgeplane_broker_auth_callout_duration_seconds_sum"), 0.9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
