"""Helpers shared by the connector integration tests (connector_e2e.py,
connector_metrics.py, connector_buffer.py): child processes with awaitable
output lines, TCP relays a test can pause or cut, a paho-mqtt (MQTT 5)
subscriber, the endpoint profile and asset resources, reading the HTTP
endpoints of `--http`, and the PASS/FAIL main loop.

Exits 77 (skipped) on import when paho-mqtt is missing.
"""

import argparse
import http.client
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))

from api_promcheck import check as promcheck  # noqa: E402
from child_proc import free_port  # noqa: E402,F401

HOST = "127.0.0.1"
SKIP = 77

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as e:  # pragma: no cover
    print("SKIP: paho-mqtt not importable (%s); install python3-paho-mqtt" % e)
    sys.exit(SKIP)


def wait_connectable(port, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on port %d" % port)


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, name, cmd, workdir, env=None):
        self.name = name
        self.log = open(os.path.join(workdir, name + ".log"), "ab")
        self.lines = queue.Queue()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                  stdin=subprocess.DEVNULL, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            self.log.write(b"[stdout] " + raw)
            self.log.flush()
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, pattern, timeout=30.0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.p.poll() is not None:
                    raise RuntimeError("%s exited with %d" % (self.name, self.p.returncode))
                continue
            m = rx.search(line)
            if m:
                return m
        raise RuntimeError("%s: no line matching %r" % (self.name, pattern))

    def stop(self):
        """SIGTERM, wait; returns the exit status (0 for a clean stop)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if not self.log.closed:
            self.log.close()
        return self.p.returncode


class Relay:
    """TCP relay: drop() cuts every live connection; pause() also refuses
    new ones (accepted then closed) until resume()."""

    def __init__(self, target_port):
        self.target = target_port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.paused = False
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                down, _ = self.ls.accept()
            except OSError:
                return
            if self.paused:
                down.close()
                continue
            try:
                up = socket.create_connection((HOST, self.target), timeout=5)
            except OSError:
                down.close()
                continue
            pair = (down, up)
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair):
        down, up = pair
        socks = [down, up]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 1.0)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (up if s is down else down).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)

    def drop(self):
        with self.lock:
            pairs = list(self.pairs)
            self.pairs = []
        for down, up in pairs:
            for s in (down, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        return len(pairs)

    def pause(self):
        self.paused = True
        self.drop()

    def resume(self):
        self.paused = False

    def close(self):
        self.stopped = True
        self.drop()
        self.ls.close()


class Sub:
    """A paho MQTT 5 subscriber collecting (topic, payload, user props)."""

    def __init__(self, port, filters, name="e2e-sub"):
        self.msgs = []
        self.cv = threading.Condition()
        self.c = mqtt.Client(client_id="%s-%d" % (name, os.getpid()), protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.subacked = threading.Event()
        self.c.on_subscribe = lambda *a: self.subacked.set()
        self.c.connect(HOST, port, keepalive=30, clean_start=True)
        self.c.loop_start()
        self.c.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        if not self.subacked.wait(10):
            raise RuntimeError("no SUBACK")

    def _on_message(self, c, ud, m):
        props = {}
        if getattr(m, "properties", None) is not None and hasattr(m.properties, "UserProperty"):
            for k, v in m.properties.UserProperty:
                props[k] = v
        ct = getattr(m.properties, "ContentType", None) if m.properties else None
        with self.cv:
            self.msgs.append((m.topic, m.payload, props, ct, m.retain))
            self.cv.notify_all()

    def wait(self, pred, timeout=20.0, what="condition"):
        end = time.monotonic() + timeout
        with self.cv:
            while not pred(self.msgs):
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s (%d messages seen)"
                                         % (what, len(self.msgs)))
                self.cv.wait(min(left, 0.5))

    def on(self, topic):
        with self.cv:
            return [m for m in self.msgs if m[0] == topic and m[1]]

    def close(self):
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:
            pass


def points(msgs, name, key_frames=False):
    """(value, status, timestamp) of point `name`, in message order (key
    frames repeat last values: left out unless asked)."""
    out = []
    for _, payload, props, _, _ in msgs:
        if props.get("type") == "ua-keyframe" and not key_frames:
            continue
        d = json.loads(payload)
        if name in d:
            v = d[name]
            out.append((v.get("Value"), v.get("StatusCode"), v.get("SourceTimestamp")))
    return out

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http_get(port, path, timeout=5.0):
    """(status, body text) of GET path."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def scrape(port):
    """Parses /metrics after checking it with api_promcheck: returns
    {(name, frozenset(labels.items())): value}."""
    st, text = http_get(port, "/metrics")
    assert st == 200, "GET /metrics: %d" % st
    errs = promcheck(text)
    assert not errs, "invalid exposition: %s" % errs[:5]
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsed sample line %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """Value of one series, or None when absent."""
    return samples.get((name, frozenset(labels.items())))


def wait_metrics(port, pred, timeout=30.0, what="metrics"):
    """Scrapes until pred(samples) is true; returns the samples."""
    end = time.monotonic() + timeout
    while True:
        s = scrape(port)
        if pred(s):
            return s
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.2)


def wait_http(port, path, status, timeout=30.0):
    """Polls path until it answers with status; returns the body."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            st, body = http_get(port, path)
            last = (st, body)
            if st == status:
                return body
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("GET %s: no %d within %.0fs (last: %r)" % (path, status, timeout, last))


PROFILE = """apiVersion: edgeplane.io/v1
kind: AssetEndpointProfile
metadata: {name: %(name)s}
spec:
  targetAddress: opc.tcp://127.0.0.1:%(port)d
  authentication: %(auth)s
  additionalConfiguration: '%(addl)s'
"""


def profile(name, port, policy="None", mode="None", auto=True, auth="{method: Anonymous}",
            shared=False):
    addl = json.dumps({"shared": shared,
                       "session": {"reconnectPeriodMilliseconds": 300,
                                   "reconnectExponentialBackOffMilliseconds": 1000},
                       "security": {"securityPolicy":
                                    "http://opcfoundation.org/UA/SecurityPolicy#" + policy,
                                    "securityMode": mode,
                                    "autoAcceptUntrustedServerCertificates": auto}})
    return PROFILE % {"name": name, "port": port, "auth": auth, "addl": addl}


def counter_asset(name, prof, topic, source="ns=1;s=Counter", extra="", publishing=250):
    """An asset with one data point, every change published (queueSize keeps
    the server from merging changes)."""
    return """---
apiVersion: edgeplane.io/v1
kind: Asset
metadata: {name: %s}
spec:
  assetEndpointProfileRef: %s
  datasets:
    - name: main
      topic: {path: %s}
      datasetConfiguration: '{"publishingInterval": %d, "samplingInterval": 0, "queueSize": 1000}'
      dataPoints:
        - {name: counter, dataSource: "%s"}
%s""" % (name, prof, topic, publishing, source, extra)


def sim_asset(name, prof, topic, node="ns=2;s=Plant.Oven1.Counter", publishing=100):
    """counter_asset on the simulation server's counter, published faster."""
    return counter_asset(name, prof, topic, node, publishing=publishing)


def apply(ep, work, bport, text):
    import subprocess
    path = os.path.join(work, "res-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([ep, "apply", "-f", path, "--broker", "%s:%d" % (HOST, bport)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "apply exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_sim(ep, work, procs):
    """Starts `edgeplane opcua-sim` (values every 100 ms) on a port it picks,
    appends it to procs and returns (process, port)."""
    sim = Proc("opcua-sim", [ep, "opcua-sim", "--listen", "opc.tcp://%s:0" % HOST,
                             "--update-ms", "100", "--log-level", "warn"], work)
    procs.append(sim)
    return sim, int(sim.wait_line(r"opcua-sim ready: opc.tcp://[^:]+:(\d+)", 30).group(1))


def run_cases(prefix, cases):
    """The main program of a connector test: runs each (name, generator)
    with --edgeplane and a fresh work directory; a PASS line per value a
    case yields, a FAIL line with the traceback when it raises; the work
    directory is kept when something failed. Returns the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeplane", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix=prefix)
    passed = failed = 0
    for name, fn in cases:
        t0 = time.monotonic()
        try:
            for info in fn(args.edgeplane, work):
                passed += 1
                print("PASS %s (%.1fs): %s" % (name, time.monotonic() - t0, info))
                sys.stdout.flush()
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
    if failed:
        print("logs kept in %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
