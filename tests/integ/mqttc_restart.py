#!/usr/bin/python3
"""Broker restart in the middle of a stream.

Usage: mqttc_restart.py --edgeplane PATH --broker mosquitto|edgeplane

`edgeplane pub -s -q 1` streams stdin lines; `edgeplane sub -q 1` prints
them. After 10 messages the broker is killed (SIGKILL). Both clients notice;
the publisher keeps taking lines, which go to its offline buffer, and keeps
trying to reconnect with growing delays. The broker is restarted on the same
port; the clients reconnect (the subscriber subscribes again, since a killed
broker has lost its session) and the buffered lines are delivered: the
subscriber prints all 20, in order, each once.

Ordering without sleeps: the publisher is paused (SIGSTOP) while the
broker comes back and resumed (SIGCONT) only once the subscriber has
subscribed again, so the buffered messages cannot reach the broker before
there is someone to deliver them to. Every other step waits for a log line.
"""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttc_common as mc  # noqa: E402

args = mc.parse_args()
mc.skip_unless_tools(args, ["mosquitto"] if args.broker == "mosquitto" else [])
E = args.edgeplane
R = mc.Results("restart-" + args.broker)
work = mc.workdir("mqttc-restart")
broker = mc.Broker(args.broker, E, work)
broker.start()
PORT = str(broker.port)
TOPIC = "it/restart"


def lines(a, b):
    return "".join("r%d\n" % i for i in range(a, b + 1)).encode()


def case_restart():
    sub = mc.Proc([E, "sub", "-p", PORT, "-t", TOPIC, "-q", "1", "-C", "20", "-W", "90", "-d"])
    sub.wait_line("err", "subscribed to")
    pub = mc.Proc([E, "pub", "-p", PORT, "-t", TOPIC, "-q", "1", "-s", "-d"], stdin=True)
    try:
        pub.wait_line("err", "connected to")
        pub.write(lines(1, 10))
        sub.wait_line("out", "r10")
        pub.wait_line("err", "message 10 of 10 complete: success")
        R.check("10 messages delivered before the restart", True)

        broker.kill()
        pub.wait_line("err", "connection lost to")
        sub.wait_line("err", "connection lost to")
        R.check("both clients notice the broker is gone", True)

        pub.write(lines(11, 20))
        pub.wait_line("err", "queued while offline (10 waiting")
        R.check("the publisher buffers 10 messages while offline", True)
        # Let it fail to reconnect a few times, so the backoff is visible.
        for _ in range(3):
            pub.wait_line("err", "cannot connect to", timeout=15)
        pub.signal(signal.SIGSTOP)

        broker.start()
        sub.wait_line("err", "reconnected to", timeout=40)
        sub.wait_line("err", "subscribed to", timeout=10)
        R.check("the subscriber reconnects and subscribes again", True)
        pub.signal(signal.SIGCONT)
        pub.wait_line("err", "reconnected to", timeout=40)
        R.check("the publisher reconnects", True)

        pub.close_stdin()
        rc, _, perr = pub.finish(timeout=30)
        R.check("the publisher exits 0 once all 20 are acknowledged", rc == 0,
                perr.decode()[-400:])
        rc, out, serr = sub.finish(timeout=30)
        got = out.decode().splitlines()
        R.check("the subscriber exits 0", rc == 0, serr.decode()[-400:])
        R.check("all 20 messages, in order, each once", got == ["r%d" % i for i in range(1, 21)],
                repr(got))

        delays = [int(m) for m in re.findall(rb"cannot connect to [^:]+:\d+: .*?; reconnecting in "
                                             rb"(\d+) ms", perr)]
        R.check("reconnect attempts back off (%s ms)" % delays,
                len(delays) >= 3 and all(b >= a for a, b in zip(delays, delays[1:])) and
                delays[-1] > delays[0], repr(delays))
    finally:
        pub.signal(signal.SIGCONT)
        pub.kill()
        sub.kill()


try:
    R.case("restart", case_restart)
finally:
    broker.stop()
sys.exit(R.finish(work))
