#!/usr/bin/python3
"""broker_metrics.py EDGEPLANE - the broker's /metrics, /healthz and /readyz.

Starts `edgeplane broker --http` on free ports, moves known traffic through
it with paho-mqtt (QoS 0/1/2 in, one subscriber out) and checks that the
exported counters say exactly that, that the output passes the independent
format checker (api_promcheck.py), and that /readyz is 200 while serving.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))
from child_proc import free_port  # noqa: E402

try:
    import paho.mqtt.client as mqtt
except ImportError as e:
    print("skipped: paho-mqtt missing (%s)" % e)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(77)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def main():
    binary = sys.argv[1]
    port, http = free_port(), free_port()
    proc = subprocess.Popen([binary, "broker", "--listen", "127.0.0.1:%d" % port, "--http",
                             "127.0.0.1:%d" % http, "--log-level", "warn"])
    passed = failed = 0

    def check(cond, what):
        nonlocal passed, failed
        if cond:
            passed += 1
            print("ok   " + what)
        else:
            failed += 1
            print("FAIL " + what)

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, body = get("http://127.0.0.1:%d/readyz" % http)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        check(status == 200 and '"ready"' in body, "/readyz is 200 once the broker listens")
        check(get("http://127.0.0.1:%d/healthz" % http)[0] == 200, "/healthz is 200")

        got = []
        sub = mqtt.Client(client_id="metrics-sub", protocol=mqtt.MQTTv5)
        sub.on_message = lambda c, u, m: got.append(m.payload)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        sub.subscribe("m/#", 2)
        time.sleep(0.3)
        pub = mqtt.Client(client_id="metrics-pub", protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        for qos, n in ((0, 5), (1, 7), (2, 3)):
            for i in range(n):
                pub.publish("m/%d" % qos, b"x", qos=qos).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while len(got) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        check(len(got) == 15, "subscriber got all 15 messages")

        _, text = get("http://127.0.0.1:%d/metrics" % http)
        with open(os.devnull, "w"):
            r = subprocess.run([sys.executable, os.path.join(HERE, "api_promcheck.py"), "-"],
                               input=text, text=True, capture_output=True)
        check(r.returncode == 0, "exposition passes the format checker " + r.stdout[:300])
        for qos, n in ((0, 5), (1, 7), (2, 3)):
            v = metric(text, "edgeplane_broker_messages_total",
                       '{direction="in",qos="%d"}' % qos)
            check(v == n, "messages in at QoS %d = %s (expected %d)" % (qos, v, n))
            v = metric(text, "edgeplane_broker_messages_total",
                       '{direction="out",qos="%d"}' % qos)
            check(v == n, "messages out at QoS %d = %s (expected %d)" % (qos, v, n))
        check(metric(text, "edgeplane_broker_connections") == 2, "2 connections")
        check(metric(text, "edgeplane_broker_subscriptions") == 1, "1 subscription")
        check((metric(text, "edgeplane_broker_bytes_total", '{direction="in"}') or 0) > 0,
              "bytes in counted")
        sub.loop_stop()
        pub.loop_stop()
        sub.disconnect()
        pub.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
