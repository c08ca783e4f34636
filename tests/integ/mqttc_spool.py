#!/usr/bin/python3
"""The MQTT client library's disk spool (options.spool_dir) across a crash.

A client program (mqttc_spool_client.c) publishes N QoS 1 messages numbered
1..N while the broker (`edgeplane broker` with a data directory, on a free
port) is down, and is killed with SIGKILL. It is started again on the same
spool directory, then the broker is started, and a paho subscriber whose
persistent session was made before must receive every number 1..N in
order (duplicates are allowed by the at-least-once guarantee: counted and
reported). Second case: a spool too small for N messages, under both full
policies; what is missing must be exactly what the client reported as
refused or dropped.
"""

import os
import queue
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttc_common as mc  # noqa: E402

try:
    import paho.mqtt.client as mqtt
except ImportError as e:
    print("skipped: paho-mqtt not importable by %s (%s)" % (sys.executable, e))
    print("0 passed, 0 failed")
    sys.exit(mc.SKIP)

TOPIC = "spool/seq"


class Sub:
    """A persistent-session QoS 1 subscriber collecting payloads."""

    def __init__(self, port, cid):
        self.port = port
        self.cid = cid
        self.q = queue.Queue()
        self.c = None

    def connect(self, subscribe):
        ready = queue.Queue()
        c = mqtt.Client(client_id=self.cid, clean_session=False, protocol=mqtt.MQTTv311)
        c.on_connect = lambda cl, ud, fl, rc: ready.put(("connack", rc))
        c.on_subscribe = lambda cl, ud, mid, q: ready.put(("suback", q))
        c.on_message = lambda cl, ud, m: self.q.put(int(m.payload.decode()))
        c.connect(mc.HOST, self.port)
        c.loop_start()
        kind, rc = ready.get(timeout=10)
        if kind != "connack" or rc != 0:
            raise RuntimeError("subscriber not connected: %r %r" % (kind, rc))
        if subscribe:
            c.subscribe(TOPIC, qos=1)
            kind, q = ready.get(timeout=10)
            if kind != "suback" or q[0] != 1:
                raise RuntimeError("subscription refused: %r %r" % (kind, q))
        self.c = c

    def close(self):
        if self.c:
            self.c.disconnect()
            self.c.loop_stop()
            self.c = None

    def collect(self, count, timeout=30.0):
        """Payloads received until `count` distinct ones were seen (or
        nothing came for `timeout` s), then late duplicates."""
        got = []
        seen = set()
        while len(seen) < count:
            try:
                v = self.q.get(timeout=timeout)
            except queue.Empty:
                break
            got.append(v)
            seen.add(v)
        # late duplicates
        while True:
            try:
                got.append(self.q.get(timeout=0.5))
            except queue.Empty:
                break
        return got


def client_cmd(args, port, spool, n, max_bytes, policy):
    return [args.client, str(port), spool, str(n), str(max_bytes), policy]


def parse_published(line):
    f = line.decode().split()
    return {"n": int(f[1]), "accepted": int(f[3]), "refused": int(f[5]), "dropped": int(f[7])}


def crash_and_replay(res, args, work, tag, n, max_bytes, policy):
    """Returns (published stats, replayed count, received payloads)."""
    broker = mc.Broker("edgeplane", args.edgeplane, work)
    broker_data = os.path.join(work, "broker-data-" + tag)
    spool = os.path.join(work, "spool-" + tag)

    def start_with_data():
        # the broker keeps the subscriber's session across its restart
        log = os.path.join(work, "broker-%s-%d.log" % (tag, broker.starts + 1))
        broker.starts += 1
        with open(log, "wb") as f:
            broker.proc = mc.subprocess.Popen(
                [args.edgeplane, "broker", "--listen", "%s:%d" % (mc.HOST, broker.port),
                 "--data-dir", broker_data, "--log-level", "warn"],
                stdout=f, stderr=mc.subprocess.STDOUT)
        mc.wait_connectable(broker.port, broker.proc)

    sub = Sub(broker.port, "spool-sub-" + tag)
    client = None
    try:
        start_with_data()
        sub.connect(subscribe=True)
        sub.close()
        broker.stop()

        client = mc.Proc(client_cmd(args, broker.port, spool, n, max_bytes, policy))
        client.wait_line("out", "replayed 0")
        pub = parse_published(client.wait_line("out", "published", timeout=60))
        client.kill()  # SIGKILL while the broker is down
        res.check("%s: the first client was killed by SIGKILL" % tag,
                  client.p.returncode == -9, str(client.p.returncode))

        client = mc.Proc(client_cmd(args, broker.port, spool, 0, max_bytes, policy))
        line = client.wait_line("out", "replayed")
        replayed = int(line.split()[1])
        start_with_data()
        status, out, err = client.finish(timeout=60)
        res.check("%s: the restarted client sent everything and exited 0" % tag,
                  status == 0 and b"all acknowledged" in out,
                  "status %s, stderr %r" % (status, err[-300:]))
        sub.connect(subscribe=False)
        got = sub.collect(replayed, timeout=10)
        return pub, replayed, got
    finally:
        sub.close()
        if client:
            client.kill()
        broker.stop()


def first_seen(got):
    order, seen = [], set()
    for v in got:
        if v not in seen:
            seen.add(v)
            order.append(v)
    return order


def case_crash(res, args, work):
    n = 300
    pub, replayed, got = crash_and_replay(res, args, work, "crash", n, 0, "drop")
    res.check("crash: all %d publications accepted while the broker was down" % n,
              pub["accepted"] == n and pub["refused"] == 0, str(pub))
    res.check("crash: the restarted client queued all %d from the spool" % n, replayed == n,
              "replayed %d" % replayed)
    order = first_seen(got)
    res.check("crash: the subscriber received 1..%d in order" % n,
              order == list(range(1, n + 1)),
              "got %d distinct, first %r" % (len(order), order[:10]))
    print("crash: %d received, %d duplicates" % (len(got), len(got) - len(order)))


def case_full(res, args, work, policy):
    n = 2000
    tag = "full-" + policy
    pub, replayed, got = crash_and_replay(res, args, work, tag, n, 32 * 1024, policy)
    order = first_seen(got)
    missing = n - len(order)
    res.check("%s: the small spool did not hold all %d" % (tag, n), missing > 0, str(pub))
    if policy == "refuse":
        res.check("%s: refused == dropped_full == missing" % tag,
                  pub["refused"] == pub["dropped"] == missing,
                  "%s, missing %d" % (pub, missing))
        res.check("%s: the first %d were delivered, in order" % (tag, len(order)),
                  order == list(range(1, len(order) + 1)), "first %r" % order[:10])
    else:
        res.check("%s: none refused, dropped_full == missing" % tag,
                  pub["refused"] == 0 and pub["dropped"] == missing,
                  "%s, missing %d" % (pub, missing))
        res.check("%s: the newest %d were delivered, in order" % (tag, len(order)),
                  order == list(range(missing + 1, n + 1)), "first %r" % order[:10])
    res.check("%s: replayed == delivered" % tag, replayed == len(order),
              "replayed %d, delivered %d" % (replayed, len(order)))
    print("%s: %d missing, %d duplicates" % (tag, missing, len(got) - len(order)))


def main():
    ap = mc.argparse.ArgumentParser()
    ap.add_argument("--edgeplane", required=True)
    ap.add_argument("--client", required=True)
    args = ap.parse_args()
    mc.skip_unless_tools(args, [])
    work = mc.workdir("mqttc-spool")
    res = mc.Results("mqttc_spool")
    res.case("crash", case_crash, res, args, work)
    res.case("full refuse", case_full, res, args, work, "refuse")
    res.case("full drop", case_full, res, args, work, "drop")
    return res.finish(work)


if __name__ == "__main__":
    sys.exit(main())
