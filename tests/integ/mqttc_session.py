#!/usr/bin/python3
"""Persistent sessions with `edgeplane sub --no-clean`, QoS 1.

Usage: mqttc_session.py --edgeplane PATH --broker mosquitto|edgeplane

For MQTT 5 and 3.1.1: subscribe with a fixed client id and --no-clean, stop
the subscriber (SIGTERM), publish QoS 1 messages while it is away (half
with edgeplane pub, half with mosquitto_pub), subscribe again: every message
arrives exactly once, in publish order, and a further run gets nothing.
Then the "acknowledge after printing" rule: with -C 3 and five messages
waiting, the two not printed are delivered on the next run, not lost.
"""

import os
import random
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttc_common as mc  # noqa: E402

args = mc.parse_args()
mc.skip_unless_tools(args, ["mosquitto_pub"] + (["mosquitto"] if args.broker == "mosquitto"
                                                 else []))
E = args.edgeplane
R = mc.Results("session-" + args.broker)
work = mc.workdir("mqttc-session")
broker = mc.Broker(args.broker, E, work)
broker.start()
PORT = str(broker.port)


def sub_cmd(cid, topic, version, extra=()):
    return [E, "sub", "-p", PORT, "-i", cid, "--no-clean", "-q", "1", "-t", topic, "-V",
            version] + list(extra)


def publish_away(topic, version, first, n_ours, n_theirs):
    """Messages first.. with edgeplane pub, then with mosquitto_pub."""
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-t", topic, "-q", "1", "-V", version,
                         "-m", "msg {n}", "-c", "--repeat", str(n_ours)])
    R.check("v%s: edgeplane pub of %d QoS 1 messages exits 0" % (version, n_ours), rc == 0,
            err.decode())
    # -c numbers from 1; shift by publishing the rest explicitly.
    for i in range(n_ours + 1, n_ours + n_theirs + 1):
        rc, _, err = mc.run(["mosquitto_pub", "-p", PORT, "-t", topic, "-q", "1",
                             "-V", "mqttv5" if version == "5" else "mqttv311", "-m",
                             "msg %d" % (first + i - 1)])
        if rc != 0:
            R.check("v%s: mosquitto_pub message %d" % (version, i), False, err.decode())
            return
    R.check("v%s: mosquitto_pub of %d QoS 1 messages" % (version, n_theirs), True)


def case_resume(version):
    cid = "it-sess-%s-%06x" % (version, random.getrandbits(24))
    topic = "it/session/" + cid
    sub = mc.Proc(sub_cmd(cid, topic, version, ["-d"]))
    sub.wait_line("err", "subscribed to")
    sub.signal(signal.SIGTERM)
    rc, _, err = sub.finish()
    R.check("v%s: subscriber stopped by SIGTERM exits 0" % version, rc == 0, err.decode())

    publish_away(topic, version, 1, 5, 5)
    want = ["msg %d" % i for i in range(1, 11)]

    rc, out, err = mc.run(sub_cmd(cid, topic, version, ["-C", "10", "-W", "20"]))
    got = out.decode().splitlines()
    R.check("v%s: resubscribed client gets the 10 messages" % version, rc == 0, err.decode())
    R.check("v%s: exactly once, in publish order" % version, got == want, repr(got))

    rc, out, err = mc.run(sub_cmd(cid, topic, version, ["-W", "2"]))
    R.check("v%s: nothing is delivered a second time" % version, rc == 0 and out == b"",
            repr(out))


def case_unprinted_not_lost(version):
    cid = "it-sess-c-%s-%06x" % (version, random.getrandbits(24))
    topic = "it/session/" + cid
    sub = mc.Proc(sub_cmd(cid, topic, version, ["-d"]))
    sub.wait_line("err", "subscribed to")
    sub.signal(signal.SIGTERM)
    sub.finish()
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-t", topic, "-q", "1", "-V", version, "-m",
                         "m{n}", "-c", "--repeat", "5"])
    R.check("v%s: 5 messages published while away" % version, rc == 0, err.decode())
    rc, out, _ = mc.run(sub_cmd(cid, topic, version, ["-C", "3", "-W", "20"]))
    R.check("v%s: -C 3 prints the first three" % version,
            out.decode().splitlines() == ["m1", "m2", "m3"], repr(out))
    rc, out, _ = mc.run(sub_cmd(cid, topic, version, ["-C", "2", "-W", "20"]))
    R.check("v%s: the two not printed arrive on the next run" % version,
            out.decode().splitlines() == ["m4", "m5"], repr(out))
    rc, out, _ = mc.run(sub_cmd(cid, topic, version, ["-W", "2"]))
    R.check("v%s: and only once" % version, out == b"", repr(out))


try:
    for v in ("5", "3"):
        R.case("resume v" + v, case_resume, v)
        R.case("unprinted v" + v, case_unprinted_not_lost, v)
finally:
    broker.stop()
sys.exit(R.finish(work))
