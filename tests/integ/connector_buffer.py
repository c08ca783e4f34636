#!/usr/bin/python3
"""The connector's bounded offline buffer (docs/connector.md, "Broker
unreachable"): drop-oldest, counted per asset.

Our broker (persistent: --data-dir, so a subscriber's session and its
queued messages survive), our simulation server and `edgeplane connector
--buffer-messages 20 --http`. One asset publishes the simulation's counter,
one value per message. A paho MQTT 5 subscriber with a persistent session
records what arrives. The broker is killed (SIGKILL by pid) and stays down
until the connector's `edgeplane_connector_dropped_total` shows that the
buffer overflowed many times over; then it is started again on the same
port and data directory.

Checked: while the broker is down the buffer gauges never exceed their
limits, the connector's RSS stays within 4 MiB of where it was (32 MiB
in sanitizer builds, whose quarantine keeps freed memory), and
dropped_total grows. Afterwards (the simulation stopped, so the totals are
final): the subscriber's counter values are in order; values received +
dropped_total = values published (values_total), so nothing else went
missing; the outage leaves one gap after the values sent before it, of
exactly dropped_total values (the newest were kept, the oldest dropped) --
plus any value the server itself skipped, which the test counts (values
that were never published); the status message's `dropped` agrees.

Ends with "N passed, N failed"; exit 77 (skipped) without paho-mqtt.
"""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connector_lib import (HOST, Proc, Sub, apply, free_port, metric, mqtt, profile,  # noqa: E402
                           rss_kib, run_cases, sim_asset, start_sim, wait_connectable,
                           wait_http, wait_metrics)
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

CID = "buffer-conn"
LIMIT = 20
TOPIC = "buf/counter"


class PersistentSub(Sub):
    """Subscriber whose session outlives a broker restart (expiry 1 h,
    clean start only the first time; paho reconnects by itself). Keeps
    counter values and the last status message; close() is Sub's."""

    def __init__(self, port):
        self.values = []
        self.status = None
        self.cv = threading.Condition()
        self.c = mqtt.Client(client_id="buffer-sub-%d" % os.getpid(), protocol=mqtt.MQTTv5)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.subacked = threading.Event()
        self.c.on_subscribe = lambda *a: self.subacked.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.c.connect(HOST, port, keepalive=5, clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                       properties=props)
        self.c.loop_start()
        if not self.subacked.wait(10):
            raise RuntimeError("no SUBACK")

    def _on_connect(self, c, ud, flags, rc, props=None):
        if not self.subacked.is_set():
            c.subscribe([(TOPIC, SubscribeOptions(qos=1)),
                         ("$edgeplane/status/assets/buf", SubscribeOptions(qos=1))])

    def _on_message(self, c, ud, m):
        with self.cv:
            if m.topic == TOPIC:
                self.values.append(json.loads(m.payload)["counter"]["Value"])
            elif m.payload:
                self.status = json.loads(m.payload)
            self.cv.notify_all()

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        with self.cv:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s (%d values)"
                                         % (what, len(self.values)))
                self.cv.wait(min(left, 0.5))


def gaps(values):
    """(unique values in arrival order, duplicates, [(after, before)] gaps);
    raises on a value older than the newest unless it is a redelivery."""
    uniq, dups, holes = [], 0, []
    seen = set()
    for v in values:
        if v in seen:
            dups += 1
            continue
        if uniq and v < uniq[-1]:
            raise AssertionError("%d after %d: out of order" % (v, uniq[-1]))
        if uniq and v != uniq[-1] + 1:
            holes.append((uniq[-1], v))
        uniq.append(v)
        seen.add(v)
    return uniq, dups, holes


def sanitized(ep):
    with open(ep, "rb") as f:
        return b"__asan_init" in f.read()


def run(ep, work):
    procs = []
    sub = None
    bport = free_port()
    bdata = os.path.join(work, "broker-data")

    def start_broker():
        p = Proc("broker", [ep, "broker", "--listen", "%s:%d" % (HOST, bport), "--data-dir",
                            bdata, "--durability", "sync", "--log-level", "warn"], work)
        procs.append(p)
        wait_connectable(bport)
        return p
    try:
        broker = start_broker()
        sim, sport = start_sim(ep, work, procs)
        conn = Proc("connector", [ep, "connector", "--broker", "%s:%d" % (HOST, bport),
                                  "--id", CID, "--http", "%s:0" % HOST, "--buffer-messages",
                                  str(LIMIT), "--status-interval", "1000",
                                  "--pki", os.path.join(work, "pki")], work)
        procs.append(conn)
        hport = int(conn.wait_line(r"connector ready: broker \S+ http [^ ]+:(\d+)", 15).group(1))
        wait_http(hport, "/readyz", 200, 20)
        sub = PersistentSub(bport)
        apply(ep, work, bport, profile("sim", sport) + sim_asset("buf", "sim", TOPIC))
        sub.wait(lambda s: len(s.values) >= 30, 30, "30 values before the outage")
        rss0 = rss_kib(conn.p.pid)
        yield "%d values flowing, connector RSS %d KiB" % (len(sub.values), rss0)

        # outage: wait for the overflow to be counted, sampling the bounds
        broker.p.send_signal(signal.SIGKILL)
        broker.p.wait()
        wait_http(hport, "/readyz", 503, 20)
        peak = {"msgs": 0, "bytes": 0, "rss": rss0}

        def overflowed(s):
            q = metric(s, "edgeplane_connector_buffer_messages", connector=CID)
            b = metric(s, "edgeplane_connector_buffer_bytes", connector=CID)
            assert q <= LIMIT, "buffer holds %d > %d messages" % (q, LIMIT)
            assert b <= metric(s, "edgeplane_connector_buffer_limit_bytes", connector=CID)
            peak["msgs"] = max(peak["msgs"], q)
            peak["bytes"] = max(peak["bytes"], b)
            peak["rss"] = max(peak["rss"], rss_kib(conn.p.pid))
            return (metric(s, "edgeplane_connector_dropped_total", asset="buf") or 0) >= 100
        s = wait_metrics(hport, overflowed, 60, "100 values dropped during the outage")
        dropped_down = metric(s, "edgeplane_connector_dropped_total", asset="buf")
        assert peak["msgs"] >= LIMIT - 2, "the buffer filled up (peak %d)" % peak["msgs"]
        # sanitizer builds keep freed memory in quarantine: a looser bound
        slack = 32768 if sanitized(ep) else 4096
        assert peak["rss"] - rss0 < slack, "RSS grew from %d to %d KiB" % (rss0, peak["rss"])
        yield "broker down: %d dropped, buffer peak %d messages / %d bytes, RSS %d -> %d KiB" % (
            dropped_down, peak["msgs"], peak["bytes"], rss0, peak["rss"])

        # back: everything buffered arrives, then live values
        last_before = max(sub.values)
        broker = start_broker()
        wait_http(hport, "/readyz", 200, 30)
        s = wait_metrics(hport, lambda s: metric(s, "edgeplane_connector_buffer_messages",
                                                 connector=CID) == 0, 20, "an empty buffer")
        dropped = metric(s, "edgeplane_connector_dropped_total", asset="buf")
        target = last_before + dropped + LIMIT + 50
        sub.wait(lambda x: x.values and max(x.values) >= target, 30,
                 "values up to %d after the restart" % target)
        # stop the source: once the asset is down the connector's totals are final
        sim.stop()
        s = wait_metrics(hport, lambda s: metric(s, "edgeplane_connector_connected",
                                                 asset="buf") == 0
                         and metric(s, "edgeplane_connector_buffer_messages", connector=CID) == 0,
                         20, "the asset down and the buffer empty")
        assert metric(s, "edgeplane_connector_dropped_total", asset="buf") == dropped, \
            "nothing dropped once the broker is back"
        published = metric(s, "edgeplane_connector_values_total", asset="buf")
        # every message carries one value, so dropped messages = dropped values
        assert published == metric(s, "edgeplane_connector_messages_total", asset="buf")

        def complete(x):
            return len(set(x.values)) + dropped >= published
        try:
            sub.wait(complete, 20, "every value not dropped")
        except AssertionError:
            pass  # reported below with the numbers
        with sub.cv:
            values = list(sub.values)
        uniq, dups, holes = gaps(values)  # raises when out of order
        assert len(uniq) + dropped == published, (
            "%d values received + %d dropped != %d published" % (len(uniq), dropped, published))
        # The server may skip a counter value when its sampling is late (a
        # loaded machine): such values were never published, so they are
        # not dropped. The outage's gap is the largest; it misses exactly
        # the dropped values when the server skipped none.
        skipped = (uniq[-1] - uniq[0] + 1) - published
        a, b = max(holes, key=lambda h: h[1] - h[0])
        missing = b - a - 1
        assert a >= last_before - LIMIT, "the gap starts at the outage (%d, %d)" % (a, last_before)
        assert dropped <= missing <= dropped + skipped, (
            "gap %d..%d misses %d values, dropped_total %d, %d skipped by the server" % (
                a, b, missing, dropped, skipped))
        # status messages share the buffer (one a second here; dropped
        # ones are not the asset's); a later one carries the total
        sub.wait(lambda x: x.status and x.status["counters"]["dropped"] == dropped, 20,
                 "the status message's dropped counter")
        rc = conn.stop()
        assert rc == 0, "connector exit status %s on SIGTERM" % rc
        yield ("gap %d..%d: %d values missing, dropped_total %d (server skipped %d); %d received "
               "+ %d dropped = %d published; %d in order after the gap, %d redelivered" % (
                   a, b, missing, dropped, skipped, len(uniq), dropped, published,
                   len(uniq) - uniq.index(b), dups))
    finally:
        if sub:
            sub.close()
        for p in reversed(procs):
            p.stop()


def main():
    return run_cases("ep-connector-buffer-", (("buffer", run),))


if __name__ == "__main__":
    sys.exit(main())
