#!/usr/bin/python3
"""Metrics and health of the OPC UA connector (docs/connector.md, Metrics).

Standalone: `edgeplane connector --http 127.0.0.1:0` started before the
broker exists, then our broker, our simulation server (behind a relay this
script can cut) and an asset that works plus one whose server does not
answer. Checked over HTTP, the exposition validated by api_promcheck.py:
/healthz always 200; /readyz 503 naming the connector's check until the
broker is up, 200 while connected, 503 again once the broker is killed;
per asset `connected`, `state`, values/messages/notifications counters that
grow, the last value time, a last error time for the broken asset only,
`reconnects_total` after the OPC UA connection is cut; the offline buffer
gauges and their limits.

In `edgeplane run --http`: the connector's metrics appear on the broker's
endpoint next to the broker's, and /readyz counts both services' checks.

Ends with "N passed, N failed"; exit 77 (skipped) without paho-mqtt.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connector_lib import (HOST, Proc, Relay, apply, free_port, http_get,  # noqa: E402
                           metric, profile, run_cases, scrape, sim_asset, start_sim,
                           wait_connectable, wait_http, wait_metrics)

CID = "metrics-conn"


def standalone(ep, work):
    procs = []
    relay = None
    try:
        bport = free_port()
        _, sport = start_sim(ep, work, procs)
        relay = Relay(sport)
        conn = Proc("connector", [ep, "connector", "--broker", "%s:%d" % (HOST, bport),
                                  "--id", CID, "--http", "%s:0" % HOST,
                                  "--status-interval", "500", "--pki", os.path.join(work, "pki")],
                    work)
        procs.append(conn)
        hport = int(conn.wait_line(r"connector ready: broker \S+ http [^ ]+:(\d+)", 15).group(1))

        # no broker yet: alive, not ready, the reason names the connector
        st, _ = http_get(hport, "/healthz")
        assert st == 200, "healthz %d" % st
        st, body = http_get(hport, "/readyz")
        assert st == 503, "readyz %d before the broker exists" % st
        failing = json.loads(body)["failing"]
        assert [f["check"] for f in failing] == ["connector_broker:" + CID], body
        s = scrape(hport)
        assert metric(s, "edgeplane_connector_broker_connected", connector=CID) == 0
        assert metric(s, "edgeplane_connector_buffer_limit_messages", connector=CID) == 100000
        assert metric(s, "edgeplane_connector_buffer_limit_bytes", connector=CID) == 64 << 20

        broker = Proc("broker", [ep, "broker", "--listen", "%s:%d" % (HOST, bport),
                                 "--log-level", "warn"], work)
        procs.append(broker)
        wait_connectable(bport)
        body = wait_http(hport, "/readyz", 200, 20)
        assert json.loads(body)["checks"] == 1, body
        yield "ready once the broker is up"

        dead = free_port()
        apply(ep, work, bport, profile("sim", relay.port) + sim_asset("m-ok", "sim", "m/ok")
              + "---\n" + profile("nothing", dead)
              + sim_asset("m-bad", "nothing", "m/bad"))

        def running(s):
            v = metric(s, "edgeplane_connector_values_total", asset="m-ok")
            e = metric(s, "edgeplane_connector_last_error_timestamp_seconds", asset="m-bad")
            # gauges are copied every second: wait for them too
            c = metric(s, "edgeplane_connector_connected", asset="m-ok")
            return v is not None and v >= 20 and e is not None and e > 0 and c == 1
        s = wait_metrics(hport, running, 30, "20 values from m-ok and an error on m-bad")
        now = time.time()
        ok = lambda n: metric(s, "edgeplane_connector_" + n, asset="m-ok")  # noqa: E731
        bad = lambda n: metric(s, "edgeplane_connector_" + n, asset="m-bad")  # noqa: E731
        assert ok("connected") == 1 and bad("connected") == 0
        states = {"invalid", "disabled", "no-endpoint", "connecting", "starting", "running",
                  "reconnecting", "error"}
        for a, want in (("m-ok", {"running"}), ("m-bad", {"connecting", "error"})):
            on = {st for st in states
                  if metric(s, "edgeplane_connector_state", asset=a, state=st) == 1}
            assert len(on) == 1 and on <= want, "%s states %s" % (a, on)
        assert 0 < ok("notifications_total") <= ok("values_total"), s
        assert 0 < ok("messages_total") <= ok("values_total")
        assert abs(ok("last_value_timestamp_seconds") - now) < 10, ok(
            "last_value_timestamp_seconds")
        assert ok("last_error_timestamp_seconds") == 0
        assert abs(bad("last_error_timestamp_seconds") - now) < 30
        assert bad("values_total") == 0 and bad("last_value_timestamp_seconds") == 0
        assert ok("dropped_total") == 0 and ok("reconnects_total") == 0
        yield "m-ok %d values in %d notifications; m-bad in error since %.1fs" % (
            ok("values_total"), ok("notifications_total"),
            now - bad("last_error_timestamp_seconds"))

        # cut the OPC UA connection: counted, and values flow again
        before = ok("values_total")
        assert relay.drop() >= 1
        s = wait_metrics(hport, lambda s: (metric(s, "edgeplane_connector_reconnects_total",
                                                  asset="m-ok") or 0) >= 1
                         and metric(s, "edgeplane_connector_values_total", asset="m-ok")
                         >= before + 20 and metric(s, "edgeplane_connector_connected",
                                                   asset="m-ok") == 1,
                         30, "a reconnect of m-ok and values after it")
        yield "reconnects_total %d after one cut" % metric(
            s, "edgeplane_connector_reconnects_total", asset="m-ok")

        # the broker goes away: not ready, values wait in the buffer
        broker.p.send_signal(signal.SIGKILL)
        broker.p.wait()
        body = wait_http(hport, "/readyz", 503, 20)
        assert "connector_broker:" + CID in body, body
        s = wait_metrics(hport, lambda s: (metric(s, "edgeplane_connector_buffer_messages",
                                                  connector=CID) or 0) >= 5, 20,
                         "values waiting in the offline buffer")
        assert metric(s, "edgeplane_connector_broker_connected", connector=CID) == 0
        assert metric(s, "edgeplane_connector_buffer_bytes", connector=CID) > 0
        st, _ = http_get(hport, "/healthz")
        assert st == 200
        rc = conn.stop()
        assert rc == 0, "connector exit status %s on SIGTERM" % rc
        yield "not ready without the broker; %d messages buffered" % metric(
            s, "edgeplane_connector_buffer_messages", connector=CID)
    finally:
        if relay:
            relay.close()
        for p in reversed(procs):
            p.stop()


def in_run(ep, work):
    bport, uport, hport = free_port(), free_port(), free_port()
    run = Proc("run", [ep, "run", "--listen", "%s:%d" % (HOST, bport), "--opcua-listen",
                       "opc.tcp://%s:%d" % (HOST, uport), "--http", "%s:%d" % (HOST, hport),
                       "--log-level", "warn"], work)
    try:
        run.wait_line(r"Press Ctrl-C", 30)
        body = wait_http(hport, "/readyz", 200, 30)
        assert json.loads(body)["checks"] == 2, body  # broker and connector

        def flowing(s):
            c = [val for (n, lbl), val in s.items()
                 if n == "edgeplane_connector_connected" and val == 1]
            v = [val for (n, lbl), val in s.items()
                 if n == "edgeplane_connector_values_total" and val > 0]
            return len(v) >= 2 and len(c) >= 2
        s = wait_metrics(hport, flowing, 30, "two default assets connected, with values")
        names = {n for n, _ in s}
        assert any(n.startswith("edgeplane_broker_") for n in names), sorted(names)[:20]
        assert metric(s, "edgeplane_connector_broker_connected",
                      connector="edgeplane-connector") == 1
        assets = sorted(dict(lbl)["asset"] for (n, lbl), v in s.items()
                        if n == "edgeplane_connector_connected" and v == 1)
        assert len(assets) >= 2, assets
        yield "one endpoint: broker and connector metrics, connected assets %s" % assets
    finally:
        rc = run.stop()
        assert rc == 0, "edgeplane run exit status %s" % rc


def main():
    return run_cases("ep-connector-metrics-", (("standalone", standalone), ("run", in_run)))


if __name__ == "__main__":
    sys.exit(main())
