#!/usr/bin/python3
"""broker_persist.py EDGEPLANE - what the broker keeps across a restart.

For each of a clean restart (SIGTERM) and a crash (SIGKILL), and for MQTT
3.1.1 and 5: retained messages, persistent sessions with their
subscriptions (options, subscription identifiers, shared subscriptions),
queued QoS 1 and QoS 2 messages, a QoS 2 message awaiting PUBCOMP (the
broker sends PUBREL again, not the message), an incoming QoS 2 packet id
awaiting PUBREL (a re-sent PUBLISH is not delivered twice), the will of a
session, and that non-persistent sessions are gone. Then: corrupted and
truncated log files (the broker starts, says what it dropped, serves), and
a full disk on a small tmpfs (0x97 beyond the space, still serving, nothing
acknowledged lost), skipped with a reason when mount is not permitted.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from broker_persist_lib import Broker, Raw  # noqa: E402

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
except ImportError as e:
    print("skipped: paho-mqtt missing (%s)" % e)
    sys.exit(77)

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what, flush=True)
    else:
        failed += 1
        print("FAIL " + what, flush=True)


def client(cid, v5, clean, expiry=3600):
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                    **({} if v5 else {"clean_session": clean}))
    c.got = []
    c.on_message = lambda cl, u, m: c.got.append((m.topic, m.payload, m.qos, m.retain,
                                                  getattr(m.properties, "SubscriptionIdentifier",
                                                          None) if v5 else None))
    return c


def connect(c, port, v5, clean, expiry=3600):
    if v5:
        p = Properties(PacketTypes.CONNECT)
        if expiry:
            p.SessionExpiryInterval = expiry
        c.connect("127.0.0.1", port, clean_start=clean, properties=p)
    else:
        c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_for(pred, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def scenario(binary, work, v5, crash):
    tag = "v5" if v5 else "v3.1.1"
    how = "kill -9" if crash else "clean restart"
    data = os.path.join(work, "data-%s-%s" % (tag, "kill" if crash else "term"))
    b = Broker(binary, data, log=os.path.join(work, "broker.log"))
    b.start()
    pre = "p%s%d/" % ("5" if v5 else "3", crash)

    # Persistent subscriber with options and (v5) a subscription id, a
    # shared subscription, then offline.
    s = client(pre + "sub", v5, False)
    connect(s, b.port, v5, False)
    if v5:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = 42
        s.subscribe([(pre + "q/#", mqtt.SubscribeOptions(qos=2, noLocal=True))], properties=props)
        s.subscribe("$share/g/" + pre + "sh/#", 1)
    else:
        s.subscribe([(pre + "q/#", 2), ("$share/g/" + pre + "sh/#", 1)])
    time.sleep(0.2)
    s.disconnect()
    s.loop_stop()
    # Non-persistent session: must not survive.
    e = client(pre + "eph", v5, True)
    connect(e, b.port, v5, True, expiry=0)
    e.subscribe(pre + "q/#", 1)
    time.sleep(0.1)

    p = client(pre + "pub", v5, True)
    connect(p, b.port, v5, True, expiry=0)
    for i in range(5):
        p.publish(pre + "q/1", b"one-%d" % i, qos=1).wait_for_publish()
        p.publish(pre + "q/2", b"two-%d" % i, qos=2).wait_for_publish()
    p.publish(pre + "sh/x", b"shared", qos=1).wait_for_publish()
    p.publish(pre + "r/a", b"kept", qos=1, retain=True).wait_for_publish()
    p.publish(pre + "r/b", b"gone", qos=0, retain=True)
    p.publish(pre + "r/b", b"", qos=1, retain=True).wait_for_publish()  # cleared
    p.disconnect()
    p.loop_stop()

    # QoS 2 awaiting PUBCOMP: a raw subscriber takes one message, PUBRECs,
    # gets PUBREL, never PUBCOMPs. Incoming QoS 2 awaiting PUBREL: a raw
    # publisher sends PUBLISH qos 2 id 7, gets PUBREC, never PUBRELs.
    r = Raw(b.port, v5)
    r.connect(pre + "raw", False, expiry=3600)
    r.subscribe(1, pre + "x/#", 2)
    rp = Raw(b.port, v5)
    rp.connect(pre + "rawpub", False, expiry=3600)
    rp.publish(pre + "x/1", b"exactly-once", 2, pid=7)
    t, f, body = rp.recv()
    check(t == 5, "%s %s: PUBREC for the incoming QoS 2 PUBLISH" % (tag, how))
    t, f, body = r.recv()
    topic, qos, pid, dup, payload = r.parse_publish(f, body)
    r.ack(5, pid)  # PUBREC
    t, f, body2 = r.recv()
    check(t == 6, "%s %s: PUBREL after PUBREC" % (tag, how))
    r.close()
    rp.close()
    # A will (v5: with a delay), its connection left open at the restart;
    # a persistent subscriber of the will topic, offline.
    wsub = client(pre + "wsub", v5, False)
    connect(wsub, b.port, v5, False)
    wsub.subscribe(pre + "will/#", 1)
    time.sleep(0.2)
    wsub.disconnect()
    wsub.loop_stop()
    wl = client(pre + "will", v5, False)
    if v5:
        wp = Properties(PacketTypes.WILLMESSAGE)
        wp.WillDelayInterval = 1
        wl.will_set(pre + "will/t", b"bye", qos=1, properties=wp)
    else:
        wl.will_set(pre + "will/t", b"bye", qos=1)
    connect(wl, b.port, v5, False)
    time.sleep(0.2)
    e.loop_stop()

    if crash:
        b.kill()
    else:
        check(b.stop() == 0, "%s %s: broker stops with 0" % (tag, how))
    wl.loop_stop()
    b.start()

    # The will goes out after the restart (its client never came back).
    wsub = client(pre + "wsub", v5, False)
    connect(wsub, b.port, v5, False)
    check(wait_for(lambda: any(m[1] == b"bye" for m in wsub.got), 8),
          "%s %s: will of a session alive at the restart is published" % (tag, how))
    wsub.disconnect()
    wsub.loop_stop()

    s = client(pre + "sub", v5, False)
    connect(s, b.port, v5, False)
    wait_for(lambda: len(s.got) >= 11)
    got = sorted(m[1] for m in s.got)
    want = sorted([b"one-%d" % i for i in range(5)] + [b"two-%d" % i for i in range(5)] + [b"shared"])
    check(got == want, "%s %s: queued QoS 1/2 and shared-subscription messages delivered once "
          "(%d of %d)" % (tag, how, len(got), len(want)))
    if v5:
        check(all(m[4] == [42] for m in s.got if m[0].startswith(pre + "q/")),
              "%s %s: subscription identifier kept" % (tag, how))
    s.got.clear()
    # Subscriptions survived: a new publish reaches them; no-local kept (v5).
    p = client(pre + "pub", v5, True)
    connect(p, b.port, v5, True, expiry=0)
    p.publish(pre + "q/3", b"after", qos=2).wait_for_publish()
    p.publish(pre + "sh/y", b"after-shared", qos=1).wait_for_publish()
    check(wait_for(lambda: len(s.got) >= 2) and sorted(m[1] for m in s.got) ==
          [b"after", b"after-shared"], "%s %s: subscriptions (incl. shared) restored" % (tag, how))
    if v5:
        s.got.clear()
        s.publish(pre + "q/self", b"own", qos=1).wait_for_publish()
        time.sleep(0.3)
        check(not s.got, "%s %s: no-local option restored" % (tag, how))
    # Retained.
    rs = client(pre + "rs", v5, True)
    connect(rs, b.port, v5, True, expiry=0)
    rs.subscribe(pre + "r/#", 1)
    wait_for(lambda: len(rs.got) >= 1)
    time.sleep(0.2)
    check([m[1] for m in rs.got] == [b"kept"], "%s %s: retained message kept, cleared one "
          "stays cleared (%r)" % (tag, how, [m[1] for m in rs.got]))
    # The non-persistent session is gone.
    e2 = client(pre + "eph", v5, False)
    connect(e2, b.port, v5, False)
    time.sleep(0.2)
    check(not e2.got, "%s %s: non-persistent session not restored" % (tag, how))
    for c in (s, p, rs, e2):
        c.disconnect()
        c.loop_stop()

    # QoS 2 state.
    r = Raw(b.port, v5)
    present, rc = r.connect(pre + "raw", False, expiry=3600)
    check(present == 1, "%s %s: raw session present" % (tag, how))
    t, f, body = r.recv()
    check(t == 6 and body[:2] == body2[:2],
          "%s %s: QoS 2 awaiting PUBCOMP resumes with PUBREL (packet %d)" % (tag, how, t))
    r.ack(7, pid)  # PUBCOMP
    rp = Raw(b.port, v5)
    present, rc = rp.connect(pre + "rawpub", False, expiry=3600)
    rp.publish(pre + "x/1", b"exactly-once", 2, pid=7, dup=True)
    t, f, body = rp.recv()
    check(t == 5, "%s %s: re-sent QoS 2 PUBLISH acknowledged" % (tag, how))
    rp.ack(6, 7)  # PUBREL
    t, f, body = rp.recv()
    check(t == 7, "%s %s: PUBCOMP" % (tag, how))
    dup_seen = False
    try:
        t, f, body = r.recv(timeout=0.5)
        dup_seen = t == 3
    except OSError:
        pass
    check(not dup_seen, "%s %s: re-sent QoS 2 PUBLISH not delivered again" % (tag, how))
    r.close()
    rp.close()
    b.stop()


def corrupted(binary, work):
    """Damaged log files: the broker starts, reports what it dropped, serves."""
    data = os.path.join(work, "data-corrupt")
    log = os.path.join(work, "corrupt.log")
    b = Broker(binary, data, log=log)
    b.start()
    s = client("c-sub", False, False)
    connect(s, b.port, False, False)
    s.subscribe("c/#", 1)
    time.sleep(0.2)
    s.disconnect()
    s.loop_stop()
    p = client("c-pub", False, True)
    connect(p, b.port, False, True)
    for i in range(200):
        p.publish("c/t", b"m%d" % i, qos=1).wait_for_publish()
    p.disconnect()
    p.loop_stop()
    b.kill()
    segs = sorted(glob.glob(os.path.join(data, "wal-*.log")))
    check(len(segs) >= 1, "corrupt: a log segment exists")
    seg = segs[-1]
    size = os.path.getsize(seg)
    # Truncate the last record in half (a torn write)...
    with open(seg, "r+b") as f:
        f.truncate(size - 30)
    # ...and flip bytes in the middle of the segment.
    with open(seg, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff\x00\xff\x00")
    open(log, "w").close()
    b.start()
    text = open(log).read()
    check("torn tail" in text or "corrupt" in text or "skipped" in text,
          "corrupt: startup reports what was dropped")
    s = client("c-sub", False, False)
    connect(s, b.port, False, False)
    wait_for(lambda: len(s.got) >= 50, 3)
    n = len(s.got)
    check(0 < n < 200, "corrupt: the valid prefix is delivered (%d of 200)" % n)
    p = client("c-pub2", False, True)
    connect(p, b.port, False, True)
    p.publish("c/t", b"fresh", qos=1).wait_for_publish()
    check(wait_for(lambda: any(m[1] == b"fresh" for m in s.got)), "corrupt: broker serves")
    for c in (s, p):
        c.disconnect()
        c.loop_stop()
    check(b.stop() == 0, "corrupt: clean stop")
    # A garbage file where a segment should be, and an empty snapshot temp.
    with open(os.path.join(data, "wal-99999999999999999999.log"), "wb") as f:
        f.write(os.urandom(1000))
    open(os.path.join(data, "snap-00000000000000000001.tmp"), "wb").close()
    b.start()
    s = client("c-sub", False, False)
    connect(s, b.port, False, False)
    time.sleep(0.2)
    check(s.is_connected(), "corrupt: starts with a garbage segment and a stale temp file")
    s.disconnect()
    s.loop_stop()
    b.stop()


def full_disk(binary, work):
    mnt = os.path.join(work, "tmpfs")
    os.makedirs(mnt, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print("skip full disk: cannot mount a tmpfs (%s)" % r.stdout.decode().strip())
        return
    try:
        data = os.path.join(mnt, "data")
        b = Broker(binary, data, log=os.path.join(work, "full.log"))
        b.start()
        s = client("f-sub", True, False)
        connect(s, b.port, True, False)
        s.subscribe("f/#", 1)
        time.sleep(0.2)
        s.disconnect()
        s.loop_stop()
        acked, refused = [], 0
        payload = b"x" * 2000
        # Raw v5 publisher (paho 1.x hides the PUBACK reason code).
        rp = Raw(b.port, True)
        rp.connect("f-raw", True)
        for i in range(0, 2000):
            rp.publish("f/t", b"%06d" % i + payload, 1, pid=(i % 60000) + 1)
            t, f, body = rp.recv()
            rc = body[2] if len(body) > 2 else 0
            if rc == 0x97:
                refused += 1
            elif rc < 0x80:
                acked.append(i)
        rp.close()
        check(len(acked) > 100, "full disk: publishes within the space acknowledged (%d)" %
              len(acked))
        check(refused > 0, "full disk: publishes beyond the space get 0x97 (%d refused, %d "
              "acknowledged by the raw publisher)" % (refused, len(acked)))
        # Still serving: QoS 0 and connections.
        q = client("f-q0", True, True)
        connect(q, b.port, True, True, expiry=0)
        check(q.is_connected(), "full disk: broker keeps serving")
        q.disconnect()
        q.loop_stop()
        b.kill()
        b.start()
        s = client("f-sub", True, False)
        connect(s, b.port, True, False)
        wait_for(lambda: False, 1.5)
        have = set(int(m[1][:6]) for m in s.got)
        missing = [i for i in acked if i not in have]
        check(not missing, "full disk: nothing acknowledged lost after restart (%d delivered, "
              "%d acknowledged missing)" % (len(have), len(missing)))
        s.disconnect()
        s.loop_stop()
        b.stop()
    finally:
        subprocess.run(["umount", mnt])


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="ep-persist-")
    try:
        for v5 in (False, True):
            for crash in (False, True):
                scenario(binary, work, v5, crash)
        corrupted(binary, work)
        full_disk(binary, work)
        for log in glob.glob(os.path.join(work, "*.log")):
            rep = Broker(binary, work, log=log).sanitizer_report()
            check(not rep, "no sanitizer report in %s" % os.path.basename(log))
            if rep:
                print(rep)
    finally:
        if failed:
            print("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
