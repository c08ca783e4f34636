#!/bin/sh
# bench/connector.sh - end-to-end load test of the OPC UA connector:
#
#   OPC UA server (K changing variables) -> edgeplane connector -> broker
#   -> MQTT subscriber
#
# Reports values/s delivered to the subscriber, the connector's CPU time
# and peak RSS (per 1000 tags as well), and the latency from each value's
# SourceTimestamp to its delivery at the subscriber (p50/p99; it includes
# waiting for the publishing interval). All timestamps come from the same
# machine's clock. The latency is split in three stages with the message's
# user properties: source -> server publish (sampling, and the wait for the
# subscription's publishing cycle: up to one interval by design), server
# publish -> connector (serverToConnectorMilliseconds: the OPC UA link and
# the connector's decoding) and connector -> subscriber (from the
# CloudEvents "time": MQTT client, broker, subscriber).
#
# usage: bench/connector.sh [-k TAGS] [-u UPDATE_MS] [-p PUBLISH_MS]
#                           [-d SECONDS] [-s sim|node] [-b BINARY]
#   -k   tags (variables), default 10000; datasets of 1000 points
#   -u   how often every variable changes, default 1000 (sampling interval 0:
#        every change is reported)
#   -p   publishing interval, default 1000
#   -d   measured seconds (after a warm-up), default 20
#   -s   server: sim (edgeplane opcua-sim, default) or node (node-opcua,
#        tests/opcua/connector_server.js)
#   -b   edgeplane binary, default ./build/edgeplane
#
# Everything runs on loopback with ports chosen at run time. Needs
# /usr/bin/python3 with paho-mqtt (python3-paho-mqtt); node for -s node.
set -eu

K=10000
U=1000
P=1000
D=20
S=sim
B=./build/edgeplane
while getopts k:u:p:d:s:b: o; do
    case $o in
    k) K=$OPTARG ;;
    u) U=$OPTARG ;;
    p) P=$OPTARG ;;
    d) D=$OPTARG ;;
    s) S=$OPTARG ;;
    b) B=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
    esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$(dirname "$B")" && pwd)/$(basename "$B")
exec /usr/bin/python3 - "$B" "$SRC" "$K" "$U" "$P" "$D" "$S" <<'PY'
import collections, json, os, re, socket, subprocess, sys, tempfile, threading, time
from datetime import datetime, timezone
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

ep, src, K, U, P, D, S = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7]
work = tempfile.mkdtemp(prefix="ep-bench-connector-")
procs = []

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(name, cmd, ready=None):
    log = open(os.path.join(work, name + ".log"), "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
    procs.append(p)
    if ready:
        for line in p.stdout:
            m = re.search(ready, line.decode())
            if m:
                threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
                return p, m
        raise SystemExit(name + " did not start (see %s)" % work)
    return p, None

def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def rss_mib(pid, key="VmHWM"):
    for l in open("/proc/%d/status" % pid):
        if l.startswith(key):
            return int(l.split()[1]) / 1024
    return 0

try:
    bport = port()
    start("broker", [ep, "broker", "--listen", "127.0.0.1:%d" % bport, "--log-level", "warn"])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", bport), 0.2).close(); break
        except OSError:
            time.sleep(0.05)
    if S == "sim":
        sport = port()
        start("server", [ep, "opcua-sim", "--listen", "opc.tcp://127.0.0.1:%d" % sport,
                         "--extra-nodes", str(K), "--update-ms", str(U), "--log-level", "warn"],
              r"opcua-sim ready")
        ns, fmt = 2, "ns=2;s=Plant.Extra.%d"
    else:
        _, m = start("server", ["node", os.path.join(src, "tests/opcua/connector_server.js"),
                                "--pki", os.path.join(work, "pki"), "--extra", str(K),
                                "--update-ms", str(U)], r"READY opc.tcp://[^:]+:(\d+)")
        sport = int(m.group(1))
        fmt = "ns=1;s=Extra.%d"
    conn, _ = start("connector", [ep, "connector", "--broker", "127.0.0.1:%d" % bport,
                                  "--log-level", "warn", "--pki", os.path.join(work, "cpki")],
                    r"connector ready")
    res = ["""kind: AssetEndpointProfile
metadata: {name: bench}
spec:
  targetAddress: opc.tcp://127.0.0.1:%d
  additionalConfiguration: '{"shared": false}'
""" % sport]
    per_asset = 10000
    for a in range((K + per_asset - 1) // per_asset):
        lines = ["kind: Asset", "metadata: {name: bench-%d}" % a, "spec:",
                 "  assetEndpointProfileRef: bench", "  datasets:"]
        for d in range(a * per_asset, min(K, (a + 1) * per_asset), 1000):
            lines += ["    - name: d%d" % d, "      topic: {path: bench/d%d}" % d,
                      "      datasetConfiguration: '{\"publishingInterval\": %d, "
                      "\"samplingInterval\": 0, \"queueSize\": 1}'" % P,
                      "      dataPoints:"]
            lines += ["        - {name: v%d, dataSource: '%s'}" % (i, fmt % i)
                      for i in range(d, min(K, d + 1000))]
        res.append("\n".join(lines) + "\n")
    path = os.path.join(work, "bench.yaml")
    open(path, "w").write("---\n".join(res))
    rx = []            # (delivery time, connector time text, {SourceTimestamp: values})
    count = [0, 0]
    measuring = [False]
    lock = threading.Lock()

    ts_rx = re.compile(rb'"SourceTimestamp":"([^"]+)"')
    ts_cache = {}

    def ts_epoch(ts):
        t = ts_cache.get(ts)
        if t is None:
            s = ts.decode().rstrip("Z")
            if "." in s:
                s = s[:26]
            t = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f" if "." in s else
                                  "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
            if len(ts_cache) > 100000:
                ts_cache.clear()
            ts_cache[ts] = t
        return t

    def on_message(c, u, m):
        # the subscriber must keep up with 100 000 values/s on a small
        # machine without delaying what it measures: here only the
        # timestamps are found (a regular expression, every value has one)
        # and counted; they are converted after the run
        now = time.time()
        stamps = collections.Counter(ts_rx.findall(m.payload))
        props = getattr(m.properties, "UserProperty", None) or []
        sent = next((v for k, v in props if k == "time"), None)
        s2c = next((v for k, v in props if k == "serverToConnectorMilliseconds"), None)
        with lock:
            if not measuring[0]:
                return
            count[0] += sum(stamps.values())
            count[1] += 1
            rx.append((now, sent, s2c, stamps))

    c = mqtt.Client(client_id="bench-sub", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.connect("127.0.0.1", bport)
    c.subscribe("bench/#", options=SubscribeOptions(qos=0))
    c.loop_start()
    t_apply = time.time()
    subprocess.run([ep, "apply", "-f", path, "--broker", "127.0.0.1:%d" % bport], check=True,
                   stdout=subprocess.DEVNULL)
    time.sleep(max(5, K / 10000))        # warm-up: sessions, items, first values
    cpu0, t0 = cpu_s(conn.pid), time.time()
    with lock:
        measuring[0] = True
    time.sleep(D)
    with lock:
        measuring[0] = False
    cpu1, t1 = cpu_s(conn.pid), time.time()
    rss = rss_mib(conn.pid)
    rss_now = rss_mib(conn.pid, "VmRSS")
    c.loop_stop()
    span = t1 - t0
    # per value: source -> delivery, and the three stages
    lat, lat_src, lat_ua, lat_mq = [], [], [], []
    for now, sent, s2c, stamps in rx:
        t_conn = ts_epoch(sent.encode()) if sent else None
        t_srv = t_conn - int(s2c) / 1000 if t_conn is not None and s2c is not None else None
        nv = sum(stamps.values())
        if t_conn is not None:
            lat_mq.append((now - t_conn, nv))
        if t_srv is not None:
            lat_ua.append((t_conn - t_srv, nv))
        for ts, n in stamps.items():
            t = ts_epoch(ts)
            lat.append((now - t, n))
            if t_srv is not None:
                lat_src.append((t_srv - t, n))

    def pct(pairs, q):
        if not pairs:
            return float("nan")
        pairs.sort()
        total = sum(n for _, n in pairs)
        acc = 0
        for v, n in pairs:
            acc += n
            if acc >= q * total:
                return round(v * 1000, 1)
        return round(pairs[-1][0] * 1000, 1)
    vps = count[0] / span
    cpu = (cpu1 - cpu0) / span
    out = {"server": S, "tags": K, "update_ms": U, "publish_ms": P, "seconds": round(span, 1),
           "values_per_s": round(vps), "messages_per_s": round(count[1] / span, 1),
           "connector_cpu_percent": round(cpu * 100, 1),
           "values_per_cpu_s": round(vps / cpu) if cpu > 0 else None,
           "connector_peak_rss_mib": round(rss, 1), "connector_rss_mib": round(rss_now, 1),
           "rss_mib_per_1000_tags": round(rss / (K / 1000), 2),
           "cpu_ms_per_s_per_1000_tags": round(cpu * 1000 / (K / 1000), 2),
           "latency_ms_p50": pct(lat, 0.50), "latency_ms_p99": pct(lat, 0.99),
           "latency_ms_max": pct(lat, 1.0),
           "source_to_server_publish_ms_p50": pct(lat_src, 0.50),
           "source_to_server_publish_ms_p99": pct(lat_src, 0.99),
           "server_to_connector_ms_p50": pct(lat_ua, 0.50),
           "server_to_connector_ms_p99": pct(lat_ua, 0.99),
           "connector_to_delivery_ms_p50": pct(lat_mq, 0.50),
           "connector_to_delivery_ms_p99": pct(lat_mq, 0.99),
           "expected_values_per_s": round(K * 1000 / max(U, P) if U >= P else K * 1000 / U)}
    print(json.dumps(out))
finally:
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except Exception:
            p.kill()
PY
