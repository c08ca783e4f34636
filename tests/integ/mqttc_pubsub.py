#!/usr/bin/python3
"""`edgeplane pub` / `edgeplane sub` against a real broker, QoS 0/1/2.

Usage: mqttc_pubsub.py --edgeplane PATH --broker mosquitto|edgeplane

For every QoS (MQTT 5, and MQTT 3.1.1 for QoS 1 and 2) the same payloads -
ASCII, UTF-8, quotes, empty, 10 KiB of binary with NUL bytes, 200 KiB of
text - go
  ours -> ours:          edgeplane pub  -> edgeplane sub --json
  third party -> ours:   mosquitto_pub  -> edgeplane sub --json
  ours -> third party:   edgeplane pub  -> mosquitto_sub (payload as hex)
and must arrive byte for byte, in order, at the expected QoS. Then MQTT 5
properties, retain, numbered repeats, stdin lines and the exit codes.
"""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqttc_common as mc  # noqa: E402

args = mc.parse_args()
mc.skip_unless_tools(args, ["mosquitto_pub", "mosquitto_sub", "stdbuf"] +
                     (["mosquitto"] if args.broker == "mosquitto" else []))
E = args.edgeplane
# mosquitto_sub writes its "Subscribed" debug line (our readiness signal) to
# stdout, which is block-buffered into a pipe: ask for line buffering.
MSUB = ["stdbuf", "-oL", "mosquitto_sub"]
R = mc.Results("pubsub-" + args.broker)
work = mc.workdir("mqttc-pubsub")
broker = mc.Broker(args.broker, E, work)
broker.start()
PORT = str(broker.port)

binary = bytes(range(256)) * 40
big = ("".join("line %06d of a larger message\n" % i for i in range(6700))).encode()
bin_file = os.path.join(work, "binary.bin")
big_file = os.path.join(work, "big.txt")
with open(bin_file, "wb") as f:
    f.write(binary)
with open(big_file, "wb") as f:
    f.write(big)

# (description, payload bytes, edgeplane pub args, mosquitto_pub args)
PAYLOADS = [
    ("ascii", b"hello", ["-m", "hello"], ["-m", "hello"]),
    ("utf-8", "h\u00e9llo w\u00f6rld \u2713".encode(), ["-m", "h\u00e9llo w\u00f6rld \u2713"],
     ["-m", "h\u00e9llo w\u00f6rld \u2713"]),
    ("quotes", b'say "hi" \\ back', ["-m", 'say "hi" \\ back'], ["-m", 'say "hi" \\ back']),
    ("empty", b"", ["-n"], ["-n"]),
    ("binary", binary, ["-f", bin_file], ["-f", bin_file]),
    ("200 KiB", big, ["-f", big_file], ["-f", big_file]),
]


def ep_sub(topic, qos, count, version, extra=()):
    p = mc.Proc([E, "sub", "-p", PORT, "-t", topic, "-q", str(qos), "--json", "-C", str(count),
                 "-W", "30", "-d", "-V", version] + list(extra))
    p.wait_line("err", "subscribed to")
    return p


def json_payload(obj):
    if "payload" in obj:
        return obj["payload"].encode()
    return base64.b64decode(obj["payload_base64"])


def ep_pub(topic, qos, version, pub_args, extra=()):
    return mc.run([E, "pub", "-p", PORT, "-t", topic, "-q", str(qos), "-V", version] +
                  list(pub_args) + list(extra))


def check_json_stream(what, out, want, qos):
    lines = out.decode().splitlines()
    R.check("%s: %d messages" % (what, len(want)), len(lines) == len(want),
            "got %d" % len(lines))
    for (desc, payload), line in zip(want, lines):
        obj = json.loads(line)
        got = json_payload(obj)
        R.check("%s: %s payload exact" % (what, desc), got == payload,
                "got %d bytes %r..." % (len(got), got[:40]))
        R.check("%s: %s qos %d, not retained" % (what, desc, qos),
                obj["qos"] == qos and obj["retain"] is False, line[:120])


def case_ours_to_ours(qos, version):
    topic = "it/oo/%d/%s" % (qos, version)
    sub = ep_sub(topic, qos, len(PAYLOADS), version)
    for desc, _, pargs, _ in PAYLOADS:
        rc, _, err = ep_pub(topic, qos, version, pargs)
        R.check("ours->ours v%s q%d: pub %s exits 0" % (version, qos, desc), rc == 0, err.decode())
    rc, out, err = sub.finish()
    R.check("ours->ours v%s q%d: sub exits 0" % (version, qos), rc == 0, err.decode()[-300:])
    check_json_stream("ours->ours v%s q%d" % (version, qos), out,
                      [(d, p) for d, p, _, _ in PAYLOADS], qos)


def case_mosquitto_to_ours(qos, version):
    topic = "it/mo/%d/%s" % (qos, version)
    sub = ep_sub(topic, qos, len(PAYLOADS), version)
    mv = "mqttv5" if version == "5" else "mqttv311"
    for desc, _, _, margs in PAYLOADS:
        rc, _, err = mc.run(["mosquitto_pub", "-p", PORT, "-t", topic, "-q", str(qos), "-V", mv] +
                            margs)
        R.check("mosquitto_pub->ours v%s q%d: %s sent" % (version, qos, desc), rc == 0,
                err.decode())
    rc, out, err = sub.finish()
    R.check("mosquitto_pub->ours v%s q%d: sub exits 0" % (version, qos), rc == 0,
            err.decode()[-300:])
    check_json_stream("mosquitto_pub->ours v%s q%d" % (version, qos), out,
                      [(d, p) for d, p, _, _ in PAYLOADS], qos)


def case_ours_to_mosquitto(qos, version):
    topic = "it/om/%d/%s" % (qos, version)
    mv = "mqttv5" if version == "5" else "mqttv311"
    sub = mc.Proc(MSUB + ["-p", PORT, "-t", topic, "-q", str(qos), "-V", mv, "-d",
                   "-C", str(len(PAYLOADS)), "-W", "30", "-F", "MSG %q %r %x"])
    sub.wait_line("out", "Subscribed")
    for desc, _, pargs, _ in PAYLOADS:
        rc, _, err = ep_pub(topic, qos, version, pargs)
        R.check("ours->mosquitto_sub v%s q%d: pub %s exits 0" % (version, qos, desc), rc == 0,
                err.decode())
    rc, out, err = sub.finish()
    R.check("ours->mosquitto_sub v%s q%d: mosquitto_sub exits 0" % (version, qos), rc == 0,
            err.decode())
    msgs = [ln[4:] for ln in out.decode().splitlines() if ln.startswith("MSG ")]
    R.check("ours->mosquitto_sub v%s q%d: %d messages" % (version, qos, len(PAYLOADS)),
            len(msgs) == len(PAYLOADS), "got %d" % len(msgs))
    for (desc, payload, _, _), m in zip(PAYLOADS, msgs):
        q, r, hexpl = (m.split(" ", 2) + [""])[:3]
        R.check("ours->mosquitto_sub v%s q%d: %s payload exact" % (version, qos, desc),
                bytes.fromhex(hexpl) == payload, "got %d hex chars" % len(hexpl))
        R.check("ours->mosquitto_sub v%s q%d: %s qos/retain" % (version, qos, desc),
                q == str(qos) and r == "0", m[:40])


def case_properties():
    # ours -> mosquitto_sub: user properties (order, duplicates), content
    # type, response topic, correlation data.
    sub = mc.Proc(MSUB + ["-p", PORT, "-t", "it/props", "-q", "1", "-V", "mqttv5",
                   "-d", "-C", "1", "-W", "20", "-F", "MSG %P|%C|%R|%D|%p"])
    sub.wait_line("out", "Subscribed")
    rc, _, err = ep_pub("it/props", 1, "5", ["-m", "body"],
                        ["--user-property", "a=1", "--user-property", "a=2",
                         "--user-property", "site=plant 7", "--content-type", "application/json",
                         "--response-topic", "clients/x/resp", "--correlation-data", "cid-42",
                         "--message-expiry", "60"])
    R.check("properties: pub exits 0", rc == 0, err.decode())
    rc, out, _ = sub.finish()
    line = [ln for ln in out.decode().splitlines() if ln.startswith("MSG ")]
    want = "MSG a:1 a:2 site:plant 7|application/json|clients/x/resp|cid-42|body"
    R.check("properties: mosquitto_sub sees user properties in order, content type, "
            "response topic, correlation data", line == [want], repr(line))

    # mosquitto_pub -> ours --json
    sub = ep_sub("it/props2", 1, 1, "5")
    rc, _, err = mc.run(["mosquitto_pub", "-p", PORT, "-t", "it/props2", "-q", "1", "-V",
                         "mqttv5", "-m", "x", "-D", "PUBLISH", "user-property", "k", "v1",
                         "-D", "PUBLISH", "user-property", "k", "v2",
                         "-D", "PUBLISH", "content-type", "text/plain",
                         "-D", "PUBLISH", "response-topic", "re/sp",
                         "-D", "PUBLISH", "correlation-data", "abc"])
    rc, out, err = sub.finish()
    obj = json.loads(out.decode().splitlines()[0]) if out else {}
    R.check("properties: edgeplane sub --json shows user properties in order",
            obj.get("user_properties") == [["k", "v1"], ["k", "v2"]], repr(obj))
    R.check("properties: content type, response topic, correlation data",
            obj.get("content_type") == "text/plain" and obj.get("response_topic") == "re/sp"
            and obj.get("correlation_data_base64") == base64.b64encode(b"abc").decode(),
            repr(obj))


def case_retain():
    rc, _, err = ep_pub("it/retained", 1, "5", ["-m", "kept"], ["-r"])
    R.check("retain: pub -r exits 0", rc == 0, err.decode())
    rc, out, _ = mc.run(["mosquitto_sub", "-p", PORT, "-t", "it/retained", "-C", "1", "-W", "10",
                         "-F", "%r %p"])
    R.check("retain: mosquitto_sub gets it retained", out.decode().strip() == "1 kept",
            out.decode())
    sub = mc.Proc([E, "sub", "-p", PORT, "-t", "it/retained", "--json", "-C", "1", "-W", "10"])
    rc, out, _ = sub.finish()
    obj = json.loads(out.decode()) if out else {}
    R.check("retain: edgeplane sub gets it retained",
            obj.get("retain") is True and obj.get("payload") == "kept", out.decode())
    rc, _, _ = ep_pub("it/retained", 1, "5", ["-n"], ["-r"])
    R.check("retain: cleared with an empty retained message", rc == 0)


def case_numbered_and_stdin():
    sub = mc.Proc([E, "sub", "-p", PORT, "-t", "it/num", "-q", "1", "-C", "5", "-W", "20", "-d"])
    sub.wait_line("err", "subscribed to")
    rc, _, err = ep_pub("it/num", 1, "5", ["-m", "n={n}", "-c", "--repeat", "5",
                                           "--interval", "10"])
    R.check("numbered: pub --repeat 5 -c exits 0", rc == 0, err.decode())
    rc, out, _ = sub.finish()
    R.check("numbered: n=1..n=5 in order", out.decode().splitlines() ==
            ["n=%d" % i for i in range(1, 6)], out.decode())

    lines = ["first line", "", "third \u00fcml\u00e4ut", "last without newline"]
    sub = mc.Proc([E, "sub", "-p", PORT, "-t", "it/lines", "-q", "2", "-C", str(len(lines)),
                   "-W", "20", "-d"])
    sub.wait_line("err", "subscribed to")
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-t", "it/lines", "-q", "2", "-s"],
                        stdin="\n".join(lines).encode())
    R.check("stdin: pub -s exits 0", rc == 0, err.decode())
    rc, out, _ = sub.finish()
    R.check("stdin: every line is one message, in order", out.decode().split("\n")[:-1] == lines,
            repr(out))


def case_exit_codes():
    closed = str(mc.free_port())
    rc, _, err = mc.run([E, "pub", "-p", closed, "-t", "x", "-m", "y"])
    R.check("exit: pub to a closed port is 1 with a clear message",
            rc == 1 and b"cannot connect to 127.0.0.1:" + closed.encode() in err, err.decode())
    rc, _, err = mc.run([E, "sub", "-p", closed, "-t", "x"])
    R.check("exit: sub to a closed port is 1", rc == 1 and b"cannot connect" in err, err.decode())
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-m", "no topic"])
    R.check("exit: pub without topic is 2", rc == 2 and b"-t TOPIC" in err, err.decode())
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-t", "a/+", "-m", "x"])
    R.check("exit: pub to a wildcard topic is 2", rc == 2, err.decode())
    rc, _, err = mc.run([E, "sub", "-p", PORT, "-t", "a/#/b"])
    R.check("exit: sub with a bad filter is 2", rc == 2, err.decode())
    rc, _, err = mc.run([E, "sub", "-p", PORT, "-t", "x", "--bogus"])
    R.check("exit: unknown option is 2", rc == 2 and b"--bogus" in err, err.decode())
    rc, _, err = mc.run([E, "sub", "-p", PORT, "-t", "it/silent", "-C", "1", "-W", "1"])
    R.check("exit: sub -W elapsed before -C is 1", rc == 1 and b"timed out" in err, err.decode())
    rc, _, err = mc.run([E, "sub", "-p", PORT, "-t", "it/silent", "-W", "1"])
    R.check("exit: sub -W without -C is 0", rc == 0, err.decode())
    rc, out, _ = mc.run([E, "pub", "--help"])
    R.check("exit: pub --help is 0 and shows usage", rc == 0 and b"usage: edgeplane pub" in out)
    rc, out, _ = mc.run([E, "sub", "--help"])
    R.check("exit: sub --help is 0 and shows usage", rc == 0 and b"usage: edgeplane sub" in out)
    rc, _, err = mc.run([E, "pub", "-p", PORT, "-t", "x", "-m", "y", "-V", "3",
                         "--content-type", "a"])
    R.check("exit: v5 property with -V 3 is 2", rc == 2, err.decode())


try:
    for version, qos in (("5", 0), ("5", 1), ("5", 2), ("3", 1), ("3", 2)):
        R.case("ours->ours v%s q%d" % (version, qos), case_ours_to_ours, qos, version)
        R.case("mosquitto_pub->ours v%s q%d" % (version, qos), case_mosquitto_to_ours, qos,
               version)
        R.case("ours->mosquitto_sub v%s q%d" % (version, qos), case_ours_to_mosquitto, qos,
               version)
    R.case("properties", case_properties)
    R.case("retain", case_retain)
    R.case("numbered and stdin", case_numbered_and_stdin)
    R.case("exit codes", case_exit_codes)
finally:
    broker.stop()
sys.exit(R.finish(work))
