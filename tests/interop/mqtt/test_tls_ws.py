#!/usr/bin/python3
"""TLS and WebSocket listeners against clients written by others.

- mosquitto_pub/mosquitto_sub and paho-mqtt over TLS 1.2/1.3, server-only
  and mutual TLS; a wrong CA, a client certificate from another CA and an
  expired client certificate are refused while good clients keep working;
- MQTT over WebSockets (subprotocol "mqtt") with paho-mqtt and MQTT.js,
  plain and over TLS (wss);
- certificate reload on SIGHUP without dropping established connections;
- hostile input on a TLS port: plain MQTT bytes, a handshake that never
  completes (closed after connect_timeout).

Certificates are made per run with python3-cryptography (an implementation
other than the one the broker uses). The broker runs with four listeners on
ports it picks itself (port 0); they are read from its log lines.
"""
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                os.pardir, "lib"))
from broker_fixture import main, timeout  # noqa: E402
from child_proc import LoggedProcess  # noqa: E402

try:
    import paho.mqtt.client as mqtt
    from pki import Pki
    PEERS = None
except ImportError as e:          # reported as a skip, never a pass
    PEERS = str(e)

BINARY = os.environ.get("EP_BINARY")
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, os.pardir, "node_modules")


class Edgeplane(LoggedProcess):
    """The broker with a plain, a TLS, a mutual-TLS, a ws and a wss listener."""

    NAMES = ["plain", "tls", "mtls", "ws", "wss"]

    def __init__(self, pki, root):
        self.pki = pki
        conf = os.path.join(root, "broker.yaml")
        p = pki.path
        with open(conf, "w") as f:
            f.write(f"""listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}}}
  - address: 127.0.0.1:0
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}, client_ca: {p('ca.pem')},
           client_certs: required}}
  - address: 127.0.0.1:0
    protocol: websockets
  - address: 127.0.0.1:0
    protocol: websockets
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}}}
limits:
  connect_timeout: 2s
""")
        self.spawn([BINARY, "broker", "--config", conf, "--log-level", "info"],
                   os.path.join(root, "broker.log"))
        self.ports = dict(zip(self.NAMES, self.wait_ports(len(self.NAMES))))


class Paho:
    def __init__(self, port, version=mqtt.MQTTv5 if PEERS is None else None, transport="tcp",
                 tls=None, cid=None):
        self.msgs = []
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.c = mqtt.Client(client_id=cid or "p-%d-%d" % (os.getpid(), id(self)),
                             protocol=version, transport=transport)
        if transport == "websockets":
            self.c.ws_set_options(path="/mqtt")
        if tls:
            self.c.tls_set(**tls)
        self.c.on_connect = lambda *a, **k: self.connected.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("paho: no CONNACK on port %d" % port)

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.msgs.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait(self, n, t=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.msgs) >= n, t)
        if not ok:
            raise AssertionError("expected %d messages, got %r" % (n, self.msgs))
        return self.msgs

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@unittest.skipIf(PEERS is not None or not BINARY, "peers missing: %s" % PEERS)
class TlsWebSocketTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ep-tls-")
        cls.pki = Pki(cls.dir)
        cls.broker = Edgeplane(cls.pki, cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.assertIsNone(self.broker.proc.poll(), "broker died:\n" + self.broker.output())

    def mosq(self, tool, port, *args, version="mqttv5", timeout_s=10):
        cmd = [tool, "-h", "127.0.0.1", "-p", str(port), "-V", version] + list(args)
        return subprocess.run(cmd, capture_output=True, timeout=timeout_s, text=True)

    def pub_sub_mosquitto(self, port, tls_args, version):
        # Retained, so the subscriber gets it whenever it is ready: no race
        # between mosquitto_sub subscribing and mosquitto_pub publishing.
        topic = "tls/%s/%d" % (version, port)
        r = self.mosq("mosquitto_pub", port, "-t", topic, "-m", "over-tls", "-q", "1", "-r",
                      *tls_args, version=version)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.mosq("mosquitto_sub", port, "-t", topic, "-C", "1", "-W", "10", "-q", "1",
                      *tls_args, version=version, timeout_s=15)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "over-tls"), r.stderr)
        r = self.mosq("mosquitto_pub", port, "-t", topic, "-r", "-n", *tls_args,
                      version=version)
        self.assertEqual(r.returncode, 0, r.stderr)

    @timeout(60)
    def test_mosquitto_clients_over_tls_v311_and_v5(self):
        ca = ["--cafile", self.pki.path("ca.pem")]
        for version in ("mqttv311", "mqttv5"):
            self.pub_sub_mosquitto(self.broker.ports["tls"], ca, version)

    @timeout(60)
    def test_mutual_tls_with_mosquitto_clients(self):
        p = self.pki.path
        good = ["--cafile", p("ca.pem"), "--cert", p("client.pem"), "--key", p("client.key")]
        self.pub_sub_mosquitto(self.broker.ports["mtls"], good, "mqttv5")
        port = self.broker.ports["mtls"]
        for name, args in [
                ("no client certificate", ["--cafile", p("ca.pem")]),
                ("certificate from another CA",
                 ["--cafile", p("ca.pem"), "--cert", p("stranger.pem"), "--key",
                  p("stranger.key")]),
                ("expired client certificate",
                 ["--cafile", p("ca.pem"), "--cert", p("expired.pem"), "--key",
                  p("expired.key")])]:
            r = self.mosq("mosquitto_pub", port, "-t", "x", "-m", "y", *args)
            self.assertNotEqual(r.returncode, 0, "%s was accepted" % name)

    @timeout(30)
    def test_wrong_ca_refused_by_client(self):
        r = self.mosq("mosquitto_pub", self.broker.ports["tls"], "-t", "x", "-m", "y",
                      "--cafile", self.pki.path("other-ca.pem"))
        self.assertNotEqual(r.returncode, 0)

    @timeout(60)
    def test_paho_tls_and_wss(self):
        tls = {"ca_certs": self.pki.path("ca.pem")}
        for port, transport in ((self.broker.ports["tls"], "tcp"),
                                (self.broker.ports["wss"], "websockets")):
            for version in (mqtt.MQTTv311, mqtt.MQTTv5):
                c = Paho(port, version, transport, tls)
                topic = "paho/%s/%d" % (transport, version)
                c.c.subscribe(topic, 1)
                time.sleep(0.2)
                c.c.publish(topic, b"secure", qos=1).wait_for_publish(10)
                self.assertEqual(c.wait(1)[0], (topic, b"secure"))
                c.close()

    @timeout(60)
    def test_paho_websockets_cross_protocol(self):
        # A WebSocket subscriber receives what a TCP publisher sends.
        ws = Paho(self.broker.ports["ws"], mqtt.MQTTv5, "websockets")
        ws.c.subscribe("cross/#", 2)
        time.sleep(0.3)
        tcp = Paho(self.broker.ports["plain"], mqtt.MQTTv311)
        payloads = [b"a" * n for n in (1, 125, 126, 65535, 70000)]
        for i, p in enumerate(payloads):
            tcp.c.publish("cross/%d" % i, p, qos=1).wait_for_publish(10)
        got = ws.wait(len(payloads))
        self.assertEqual([m[1] for m in got], payloads)
        ws.close()
        tcp.close()

    @timeout(90)
    def test_mqttjs_over_websockets(self):
        if not os.path.isdir(os.path.join(NODE_MODULES, "mqtt")):
            self.skipTest("MQTT.js not installed (tests/interop/package-lock.json)")
        script = r"""
const mqtt = require('mqtt');
const [port, wssPort, ca] = process.argv.slice(1);
const fs = require('fs');
function run(url, opts) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, Object.assign({protocolVersion: 5, connectTimeout: 5000,
                                               reconnectPeriod: 0}, opts));
    const timer = setTimeout(() => reject(new Error('timeout on ' + url)), 10000);
    c.on('error', reject);
    c.on('connect', () => {
      c.subscribe('js/ws', {qos: 1}, (err) => {
        if (err) return reject(err);
        c.publish('js/ws', 'hello-' + url, {qos: 1, properties: {userProperties: {k: 'v'}}});
      });
    });
    c.on('message', (t, p, packet) => {
      clearTimeout(timer);
      if (p.toString() !== 'hello-' + url) return reject(new Error('payload ' + p));
      if (!packet.properties || !packet.properties.userProperties ||
          packet.properties.userProperties.k !== 'v') return reject(new Error('props lost'));
      c.end(false, () => resolve());
    });
  });
}
(async () => {
  await run('ws://127.0.0.1:' + port + '/mqtt', {});
  await run('wss://localhost:' + wssPort + '/mqtt', {ca: fs.readFileSync(ca)});
  console.log('mqttjs-ws-ok');
})().catch((e) => { console.error(e); process.exit(1); });
"""
        r = subprocess.run(["node", "-e", script, str(self.broker.ports["ws"]),
                            str(self.broker.ports["wss"]), self.pki.path("ca.pem")],
                           capture_output=True, text=True, timeout=60,
                           cwd=os.path.join(HERE, os.pardir))
        self.assertIn("mqttjs-ws-ok", r.stdout, r.stderr)

    @timeout(60)
    def test_plain_bytes_and_stalled_handshake_on_tls_port(self):
        port = self.broker.ports["tls"]
        healthy = Paho(port, mqtt.MQTTv5, "tcp", {"ca_certs": self.pki.path("ca.pem")})
        healthy.c.subscribe("h/x", 1)
        # Plain MQTT CONNECT on a TLS port: the broker closes it.
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03abc")
        s.settimeout(5)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertNotIn(b"\x20", data[:1], "got a CONNACK without TLS")
        s.close()
        # A TCP connection that never starts the handshake is closed after
        # connect_timeout (2 s here).
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.settimeout(8)
        try:
            self.assertEqual(s.recv(1), b"")
        except ConnectionResetError:
            pass
        self.assertLess(time.monotonic() - t0, 6)
        s.close()
        healthy.c.publish("h/x", b"still", qos=1).wait_for_publish(10)
        self.assertEqual(healthy.wait(1)[0], ("h/x", b"still"))
        healthy.close()

    @timeout(60)
    def wait_serving(self, port, ca):
        """Until a new TLS connection verifies against `ca`. Certificate and
        key are two files: a reload that sees only one of them new fails,
        keeps the old certificate and is retried by the broker, so poll."""
        deadline = time.monotonic() + 15
        while True:
            r = self.mosq("mosquitto_pub", port, "-t", "probe", "-m", "x", "--cafile", ca)
            if r.returncode == 0:
                return
            self.assertLess(time.monotonic(), deadline,
                            "new certificate not served:\n" + self.broker.output())
            time.sleep(0.2)

    def test_certificate_reload_on_sighup_keeps_connections(self):
        port = self.broker.ports["tls"]
        old = Paho(port, mqtt.MQTTv5, "tcp", {"ca_certs": self.pki.path("ca.pem")})
        old.c.subscribe("reload/x", 1)
        # New server certificate from the other CA, then SIGHUP.
        self.pki.server("server", self.pki.other_ca, self.pki.other_ca_key)
        self.broker.proc.send_signal(signal.SIGHUP)
        self.wait_serving(port, self.pki.path("other-ca.pem"))
        self.assertIn("TLS certificate reloaded", self.broker.output())
        # New connections see the new certificate ...
        new = Paho(port, mqtt.MQTTv5, "tcp", {"ca_certs": self.pki.path("other-ca.pem")})
        r = self.mosq("mosquitto_pub", port, "-t", "x", "-m", "y", "--cafile",
                      self.pki.path("ca.pem"))
        self.assertNotEqual(r.returncode, 0, "old CA still accepted for new connections")
        # ... and the connection made before the reload still works.
        new.c.publish("reload/x", b"after-reload", qos=1).wait_for_publish(10)
        self.assertEqual(old.wait(1)[0], ("reload/x", b"after-reload"))
        old.close()
        new.close()
        # Restore for the other tests, and wait until it is served.
        self.pki.server("server", self.pki.ca, self.pki.ca_key)
        self.broker.proc.send_signal(signal.SIGHUP)
        self.wait_serving(port, self.pki.path("ca.pem"))


if __name__ == "__main__":
    main()
