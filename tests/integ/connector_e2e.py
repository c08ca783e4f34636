#!/usr/bin/python3
"""End-to-end tests of the OPC UA connector (src/svc/connector).

Everything runs as separate processes on loopback ports chosen at run time:
our broker, the node-opcua server tests/opcua/connector_server.js, our
simulation server (edgeplane opcua-sim) and `edgeplane connector`. The
connector reaches the broker and both OPC UA servers through TCP relays
owned by this script, so that a connection can be dropped, or the broker
restarted behind a paused relay, at a precise moment. Resources go in with
`edgeplane apply`; data comes out through a paho-mqtt (MQTT 5) subscriber.

Checked: values, source timestamps, status codes, CloudEvents properties,
ordering and completeness of a counter (no gap) across OPC UA connection
drops and across a broker restart, events with select clauses, every
security mode (+ user name, + the rejected/trust workflow), several assets
on one endpoint with misconfigured ones, and resources applied, changed,
refused and deleted while data flows.

Ends with "N passed, N failed"; exit 77 (skipped) when node, node-opcua or
paho-mqtt is missing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connector_lib import (HOST, SKIP, Proc, Relay, Sub, counter_asset, free_port,  # noqa: E402
                           mqtt, points, profile, wait_connectable)


def check_no_gap(values, what):
    uniq = []
    dups = 0
    for v in values:
        if uniq and v <= uniq[-1]:
            if v in uniq[-200:]:
                dups += 1
                continue
            raise AssertionError("%s: %d after %d (out of order)" % (what, v, uniq[-1]))
        uniq.append(v)
    for a, b in zip(uniq, uniq[1:]):
        if b != a + 1:
            raise AssertionError("%s: gap between %d and %d" % (what, a, b))
    return len(uniq), dups


class Env:
    def __init__(self, args):
        self.args = args
        self.ep = args.edgeplane
        self.work = tempfile.mkdtemp(prefix="ep-connector-e2e-")
        self.procs = []
        self.relays = []

    def start(self):
        # broker
        self.bport = free_port()
        self.broker = self.start_broker()
        self.rbroker = Relay(self.bport)
        self.relays.append(self.rbroker)
        # node-opcua server
        js = os.path.join(self.args.srcdir, "tests/opcua/connector_server.js")
        self.node = Proc("node-server", [self.args.node, js, "--pki",
                                         os.path.join(self.work, "node-pki")], self.work)
        self.procs.append(self.node)
        self.node_port = int(self.node.wait_line(r"READY opc.tcp://[^:]+:(\d+)", 90).group(1))
        self.rnode = Relay(self.node_port)
        self.relays.append(self.rnode)
        # our simulation server
        self.sport = free_port()
        self.sim = Proc("opcua-sim", [self.ep, "opcua-sim", "--listen",
                                      "opc.tcp://%s:%d" % (HOST, self.sport),
                                      "--update-ms", "100", "--log-level", "warn"], self.work)
        self.procs.append(self.sim)
        self.sim.wait_line(r"opcua-sim ready", 30)
        self.rsim = Relay(self.sport)
        self.relays.append(self.rsim)
        # secrets for the user name profile
        self.secrets = os.path.join(self.work, "secrets")
        os.makedirs(self.secrets)
        with open(os.path.join(self.secrets, "node-user"), "w") as f:
            f.write("user1\n")
        with open(os.path.join(self.secrets, "node-pass"), "w") as f:
            f.write("pass1\n")
        self.cpki = os.path.join(self.work, "connector-pki")
        self.conn = Proc("connector", [self.ep, "connector", "--broker",
                                       "%s:%d" % (HOST, self.rbroker.port), "--pki", self.cpki,
                                       "--secrets", self.secrets, "--status-interval", "500",
                                       "--log-level", "info"], self.work)
        self.procs.append(self.conn)
        self.conn.wait_line(r"connector ready", 15)

    def start_broker(self):
        p = Proc("broker", [self.ep, "broker", "--listen", "%s:%d" % (HOST, self.bport),
                            "--log-level", "warn"], self.work)
        wait_connectable(self.bport)
        return p

    def apply(self, text, expect=0):
        path = os.path.join(self.work, "res-%d.yaml" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([self.ep, "apply", "-f", path, "--broker", "%s:%d" % (HOST, self.bport)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != expect:
            raise AssertionError("apply exit %d (expected %d): %s%s" % (
                r.returncode, expect, r.stdout, r.stderr))
        return r

    def status(self, sub, name, pred, timeout=30.0, what=None):
        topic = "$edgeplane/status/assets/" + name
        holder = {}

        def ok(msgs):
            for m in reversed(msgs):
                if m[0] == topic:
                    if not m[1]:
                        holder["s"] = None
                        return pred(None)
                    holder["s"] = json.loads(m[1])
                    return pred(holder["s"])
            return False
        sub.wait(ok, timeout, what or ("status of " + name))
        return holder.get("s")

    def stop(self):
        """Stops everything; returns the connector's exit status."""
        rc = self.conn.stop() if hasattr(self, "conn") else 0
        for r in self.relays:
            r.close()
        for p in reversed(self.procs):
            p.stop()
        self.broker.stop()
        return rc


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def values_timestamps_status_codes(env, sub):
    env.apply(profile("node-none", env.rnode.port) + """---
apiVersion: edgeplane.io/v1
kind: Asset
metadata: {name: node-a}
spec:
  assetEndpointProfileRef: node-none
  externalAssetId: ext-node-a
  datasets:
    - name: main
      topic: {path: e2e/node-a}
      datasetConfiguration: '{"publishingInterval": 250, "samplingInterval": 0, "queueSize": 1000, "keyFrameCount": 4}'
      dataPoints:
        - {name: counter, dataSource: "ns=1;s=Counter"}
        - {name: quality, dataSource: "ns=1;s=Quality"}
        - {name: text, dataSource: /1:Plant/1:Text}
""")
    def all_qualities(m):
        q = points([x for x in m if x[0] == "e2e/node-a"], "quality")
        return len({s["Symbol"] if s else None for _, s, _ in q}) == 3 and len(q) >= 8
    sub.wait(all_qualities, 30, "node-a data with the three qualities")
    msgs = sub.on("e2e/node-a")
    q = points(msgs, "quality")
    symbols = {s["Symbol"] for _, s, _ in q if s}
    assert "UncertainLastUsableValue" in symbols and "BadSensorFailure" in symbols, symbols
    for v, s, ts in q:
        if s:
            assert isinstance(s["Code"], int) and s["Symbol"] in symbols, s
            assert (s["Code"] >> 30) == (1 if s["Symbol"].startswith("Uncertain") else 2), s
    assert any(s is None for _, s, _ in q), "Good values carry no StatusCode"
    rx = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$")
    for v, s, ts in points(msgs, "counter") + q:
        assert ts and rx.match(ts), ts
    texts = [v for v, _, _ in points(msgs, "text")]
    assert texts and all(re.match(r"^tick \d+$", t) for t in texts), texts[:3]
    n, dups = check_no_gap([v for v, _, _ in points(msgs, "counter")], "counter")
    assert n >= 10
    types = set()
    seqs = []
    for _, _, props, ct, _ in msgs:
        assert props["specversion"] == "1.0"
        assert props["source"] == "urn:edgeplane:test:connector-server", props["source"]
        assert props["subject"] == "node-a"
        assert props["externalAssetId"] == "ext-node-a"
        assert props["datacontenttype"] == "application/json"
        assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                        props["id"]), props["id"]
        assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", props["traceparent"])
        assert rx.match(props["time"])
        assert ct == "application/json"
        types.add(props["type"])
        seqs.append(int(props["sequence"]))
        s2c = props.get("serverToConnectorMilliseconds")
        if s2c is not None:
            # publishTime on the same machine's clock: small and not negative
            # beyond clock granularity
            assert re.match(r"^-?\d+$", s2c) and -50 <= int(s2c) < 30000, s2c
    assert types == {"ua-deltaframe", "ua-keyframe"}, types
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "sequence increases"
    # a key frame carries every point
    keys = [json.loads(p) for _, p, pr, _, _ in msgs if pr["type"] == "ua-keyframe"]
    assert all(set(k) == {"counter", "quality", "text"} for k in keys), keys[:1]
    return "%d messages, %d counter values, statuses %s" % (len(msgs), n, sorted(symbols))


@test
def counter_complete_across_opcua_drops(env, sub):
    before = len(points(sub.on("e2e/node-a"), "counter"))
    for _ in range(2):
        time.sleep(0.7)
        dropped = env.rnode.drop()
        assert dropped >= 1, "a connection to drop"
    sub.wait(lambda m: len(points([x for x in m if x[0] == "e2e/node-a"], "counter"))
             >= before + 60, 30, "counter after the drops")
    n, dups = check_no_gap([v for v, _, _ in points(sub.on("e2e/node-a"), "counter")],
                           "counter across OPC UA drops")
    return "%d consecutive values, %d duplicates" % (n, dups)


@test
def counter_complete_across_broker_restart(env, sub):
    base = points(sub.on("e2e/node-a"), "counter")
    env.rbroker.pause()             # the connector buffers from here on
    time.sleep(0.8)                 # what the old broker had is delivered
    last_before = base[-1][0] if base else None
    seen_before = len(points(sub.on("e2e/node-a"), "counter"))
    sub.close()
    env.broker.stop()
    env.broker = env.start_broker()
    sub2 = Sub(env.bport, ["e2e/#", "$edgeplane/status/#"], "e2e-sub2")
    time.sleep(1.5)                 # the connector keeps buffering
    env.rbroker.resume()
    sub2.wait(lambda m: len(points([x for x in m if x[0] == "e2e/node-a"], "counter")) >= 60,
              30, "counter after the broker restart")
    vals = [v for v, _, _ in points(sub.on("e2e/node-a"), "counter")][:seen_before]
    vals += [v for v, _, _ in points(sub2.on("e2e/node-a"), "counter")]
    n, dups = check_no_gap(vals, "counter across a broker restart")
    env.sub = sub2
    return "last before restart %s, %d consecutive values in all, %d duplicates" % (
        last_before, n, dups)


@test
def events_with_select_clauses(env, sub):
    env.apply("""apiVersion: edgeplane.io/v1
kind: Asset
metadata: {name: node-events}
spec:
  assetEndpointProfileRef: node-none
  events:
    - name: ticks
      eventNotifier: ns=1;s=Plant
      topic: {path: e2e/node-events}
      eventConfiguration: >-
        {"publishingInterval": 200, "queueSize": 100, "eventFilter": {"selectClauses": [
        {"browsePath": "/Message", "fieldId": "msg"}, {"browsePath": "/Severity"},
        {"browsePath": "/EventId"}, {"browsePath": "/Time", "fieldId": "when"}]}}
""")
    sub.wait(lambda m: len([x for x in m if x[0] == "e2e/node-events"]) >= 8, 30, "events")
    evs = [(json.loads(p), pr) for _, p, pr, _, _ in sub.on("e2e/node-events")]
    ticks = []
    for e, pr in evs:
        assert set(e) == {"msg", "Severity", "EventId", "when"}, e
        assert pr["type"] == "ua-event" and pr["subject"] == "node-events"
        m = re.match(r"^tick (\d+)$", e["msg"])
        assert m, e
        ticks.append(int(m.group(1)))
        assert e["Severity"] == 100 + ticks[-1] % 800, e
        assert isinstance(e["EventId"], str) and e["EventId"]
    n, _ = check_no_gap(ticks, "event ticks")
    return "%d events in order" % n


@test
def security_modes(env, sub):
    res = profile("node-sign", env.rnode.port, "Basic256Sha256", "Sign")
    res += "---\n" + profile("node-enc", env.rnode.port, "Aes256_Sha256_RsaPss",
                             "SignAndEncrypt")
    res += "---\n" + profile("node-user", env.rnode.port, "Aes128_Sha256_RsaOaep",
                             "SignAndEncrypt",
                             auth="{method: UsernamePassword, usernamePasswordCredentials: "
                                  "{usernameSecretName: node-user, passwordSecretName: node-pass}}")
    for p in ("sign", "enc", "user"):
        res += counter_asset("sec-" + p, "node-" + p, "e2e/sec-" + p)
    env.apply(res)
    for p in ("sign", "enc", "user"):
        sub.wait(lambda m, p=p: len([x for x in m if x[0] == "e2e/sec-" + p]) >= 3, 40,
                 "data over " + p)
        env.status(sub, "sec-" + p, lambda s: s and s["state"] == "running")
    return "Basic256Sha256/Sign, Aes256_Sha256_RsaPss/SignAndEncrypt, " \
           "Aes128_Sha256_RsaOaep/SignAndEncrypt + UserName: data flows"


@test
def trust_workflow(env, sub):
    env.apply(profile("node-trust", env.rnode.port, "Basic256Sha256", "SignAndEncrypt",
                      auto=False) + counter_asset("sec-trust", "node-trust", "e2e/sec-trust"))
    st = env.status(sub, "sec-trust", lambda s: s and s["lastError"] and
                    "connect" in s["lastError"], 30, "a refused certificate in the status")
    rejected = os.path.join(env.cpki, "rejected")
    end = time.monotonic() + 10
    while time.monotonic() < end and not os.listdir(rejected):
        time.sleep(0.1)
    files = os.listdir(rejected)
    assert files, "the server certificate is in rejected/"
    assert not sub.on("e2e/sec-trust"), "no data before trust"
    r = subprocess.run([env.ep, "opcua", "trust", files[0], "--pki", env.cpki],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    sub.wait(lambda m: len([x for x in m if x[0] == "e2e/sec-trust"]) >= 3, 40,
             "data after trust, without a restart")
    env.status(sub, "sec-trust", lambda s: s and s["state"] == "running")
    return "refused (%s), trusted %s, flowing" % (st["lastError"][:60], files[0])


@test
def several_assets_one_misconfigured(env, sub):
    sim = profile("sim", env.rsim.port, shared=False)
    good = lambda n: counter_asset(n, "sim", "e2e/" + n, "ns=2;s=Plant.Oven1.Counter")
    res = sim + good("sim-good-1") + good("sim-good-2")
    res += counter_asset("sim-bad", "sim", "e2e/sim-bad", "ns=2;s=Plant.Oven1.Counter", extra=
                         "        - {name: missing, dataSource: \"ns=2;s=Plant.NoSuchNode\"}\n"
                         "        - {name: nopath, dataSource: /2:Plant/2:NoSuchOven/2:Counter}\n")
    res += counter_asset("sim-orphan", "no-such-profile", "e2e/sim-orphan")
    env.apply(res)
    for n in ("sim-good-1", "sim-good-2", "sim-bad"):
        sub.wait(lambda m, n=n: len([x for x in m if x[0] == "e2e/" + n]) >= 4, 30, n)
    bad = env.status(sub, "sim-bad", lambda s: s and s["badDataPoints"] == 2, 30)
    assert "BadNodeIdUnknown" in bad["lastError"] or "BadNoMatch" in bad["lastError"], bad
    keys = set()
    for _, p, _, _, _ in sub.on("e2e/sim-bad"):
        keys |= set(json.loads(p))
    assert keys == {"counter"}, keys
    # our server stamps publishTime: the frame that ends a notification
    # message carries the server-to-connector time (same clock, so small and
    # not negative; frames cut early, same point twice, do not know it yet)
    s2c = [pr.get("serverToConnectorMilliseconds") for t, _, pr, _, _ in sub.msgs
           if t == "e2e/sim-good-2"]
    known = [int(v) for v in s2c if v is not None]
    assert known and all(-50 <= v < 30000 for v in known), s2c
    st = env.status(sub, "sim-orphan", lambda s: s and s["state"] == "no-endpoint", 30)
    assert "no-such-profile" in st["lastError"], st
    for n in ("sim-good-1", "sim-good-2"):
        check_no_gap([v for v, _, _ in points(sub.on("e2e/" + n), "counter")], n)
    # our simulation server behind a dropped connection: still no gap
    before = len(points(sub.on("e2e/sim-good-1"), "counter"))
    time.sleep(0.5)
    assert env.rsim.drop() >= 1
    sub.wait(lambda m: len(points([x for x in m if x[0] == "e2e/sim-good-1"], "counter"))
             >= before + 30, 30, "sim counter after a drop")
    n, d = check_no_gap([v for v, _, _ in points(sub.on("e2e/sim-good-1"), "counter")],
                        "sim counter across a drop")
    r = subprocess.run([env.ep, "get", "assets", "--broker", "%s:%d" % (HOST, env.bport)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "sim-good-1" in r.stdout and "no-endpoint" in r.stdout, r.stdout
    return "2 good assets flow, bad points reported (%s), orphan reported; sim drop: %d " \
           "consecutive values" % (bad["lastError"][:70], n)


@test
def resources_changed_while_flowing(env, sub):
    # a refused file names the resource, the field and what was expected
    r = env.apply("""apiVersion: edgeplane.io/v1
kind: Asset
metadata: {name: sim-good-1}
spec:
  assetEndpointProfileRef: sim
  datasets:
    - name: main
      datasetConfiguration: '{"queueSize": "many"}'
      dataPoints:
        - {name: counter, dataSorce: x}
""", expect=2)
    assert "Asset sim-good-1:" in r.stderr and "dataSorce" in r.stderr, r.stderr
    assert "queueSize" in r.stderr and "expected" in r.stderr, r.stderr
    # change: a second point appears
    gen0 = env.status(sub, "sim-good-1", lambda s: s is not None)["resourceGeneration"]
    env.apply(counter_asset("sim-good-1", "sim", "e2e/sim-good-1", "ns=2;s=Plant.Oven1.Counter",
                            extra="        - {name: temp, dataSource: \"ns=2;s=Plant.Oven1.Temperature\"}\n"))
    sub.wait(lambda m: any("temp" in json.loads(x[1]) for x in m
                           if x[0] == "e2e/sim-good-1" and x[1]), 30, "the added point")
    # the same again: nothing restarts. The status of the change may arrive
    # after its first data: wait for the new generation before comparing.
    gen = env.status(sub, "sim-good-1",
                     lambda s: s and s["state"] == "running" and s["resourceGeneration"] != gen0,
                     30)["resourceGeneration"]
    env.apply(counter_asset("sim-good-1", "sim", "e2e/sim-good-1", "ns=2;s=Plant.Oven1.Counter",
                            extra="        - {name: temp, dataSource: \"ns=2;s=Plant.Oven1.Temperature\"}\n"))
    # a bad version sent straight to the broker: refused, the old one runs on
    c = mqtt.Client(client_id="e2e-raw-%d" % os.getpid(), protocol=mqtt.MQTTv5)
    c.connect(HOST, env.bport)
    c.loop_start()
    c.publish("$edgeplane/resources/asset/sim-good-2",
              "kind: Asset\nmetadata: {name: sim-good-2}\nspec: {datasets: 3}\n",
              qos=1, retain=True).wait_for_publish()
    st = env.status(sub, "sim-good-2", lambda s: s and s["resourceError"], 30)
    assert "spec" in st["resourceError"] and st["state"] == "running", st
    n2 = len(sub.on("e2e/sim-good-2"))
    sub.wait(lambda m: len([x for x in m if x[0] == "e2e/sim-good-2"]) >= n2 + 4, 20,
             "the old version keeps flowing")
    st1 = env.status(sub, "sim-good-1", lambda s: s is not None)
    assert st1["resourceGeneration"] == gen, "same text applied again: no change"
    # delete: data stops, status cleared
    r = subprocess.run([env.ep, "delete", "asset", "sim-good-1", "--broker",
                        "%s:%d" % (HOST, env.bport)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    env.status(sub, "sim-good-1", lambda s: s is None, 20, "status cleared")
    time.sleep(0.6)
    n1 = len(sub.on("e2e/sim-good-1"))
    time.sleep(1.5)
    assert len(sub.on("e2e/sim-good-1")) == n1, "no data after delete"
    c.loop_stop()
    c.disconnect()
    return "refused locally (exit 2), changed, unchanged re-apply, refused on the " \
           "broker (old runs), deleted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeplane", required=True)
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--node", default=shutil.which("node"))
    ap.add_argument("--only")
    args = ap.parse_args()
    nm = os.path.join(args.srcdir, "tests/opcua/node_modules/node-opcua")
    if not args.node or not os.path.isdir(nm):
        print("SKIP: node or node-opcua missing (tools/install-deps.sh test)")
        return SKIP
    env = Env(args)
    passed = failed = 0
    try:
        env.start()
        env.sub = Sub(env.bport, ["e2e/#", "$edgeplane/status/#"])
        for t in TESTS:
            if args.only and args.only not in t.__name__:
                continue
            t0 = time.monotonic()
            try:
                info = t(env, env.sub)
                passed += 1
                print("PASS %s (%.1fs): %s" % (t.__name__, time.monotonic() - t0, info or ""))
            except Exception:
                failed += 1
                print("FAIL %s (%.1fs)" % (t.__name__, time.monotonic() - t0))
                traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    except Exception:
        failed += 1
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
    finally:
        try:
            env.sub.close()
        except Exception:
            pass
        rc = env.stop()
        if rc != 0:
            failed += 1
            print("FAIL connector exit status %s on SIGTERM (sanitizer report in its log?)" % rc)
        else:
            print("PASS connector stopped cleanly on SIGTERM")
    if failed:
        print("logs kept in %s" % env.work)
    else:
        shutil.rmtree(env.work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
