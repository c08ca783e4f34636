#!/usr/bin/python3
"""`edgeplane pub` / `edgeplane sub` over TLS and with every authentication
method, against Mosquitto or our broker.

Usage: mqttc_tls.py --edgeplane PATH --broker mosquitto|edgeplane

A throw-away PKI (tests/lib/pki.py, python3-cryptography) gives a CA, a
server certificate for localhost/127.0.0.1, a client certificate, and a
second CA nobody trusts. The broker gets two TLS listeners on ports chosen
at run time:
  users  server certificate only; user name + password (our broker also
         SCRAM-SHA-256)
  certs  client certificate required (mutual TLS), the certificate's CN is
         the identity
Mosquitto gets an equivalent mosquitto.conf and a mosquitto_passwd file.

Cases: pub/sub over TLS verified with --cafile; password from a file; bad
password refused; a CA that did not sign the server certificate refused
with the verification reason; a name the certificate does not carry
refused as a host name mismatch; --insecure connects and warns; mutual TLS
with the client certificate, and refused without it; SCRAM-SHA-256 good
and bad password (our broker only: Mosquitto has no SCRAM); the connector's
broker connection over TLS with SCRAM, and its report of a wrong CA.
"""

import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))
import mqttc_common as mc  # noqa: E402
from child_proc import stop_process  # noqa: E402

args = mc.parse_args()
need = ["mosquitto", "mosquitto_passwd"] if args.broker == "mosquitto" else []
mc.skip_unless_tools(args, need)
Pki = mc.import_pki()

E = args.edgeplane
R = mc.Results("tls-" + args.broker)
work = mc.workdir("mqttc-tls")
pki = Pki(work)
P = pki.path
USERS = {"alice": "wonderland", "bob": "builder"}


def start_edgeplane(users_port, certs_port):
    passwd = os.path.join(work, "passwd")
    for user, pw in USERS.items():
        # SCRAM entries serve both password and SCRAM-SHA-256 logins.
        r = subprocess.run([E, "passwd", "--password-stdin", "--scram", passwd, user],
                           input=pw + "\n", text=True, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("edgeplane passwd: " + r.stderr)
    conf = os.path.join(work, "broker.yaml")
    tls = "cert: %s, key: %s" % (P("server.pem"), P("server.key"))
    with open(conf, "w") as f:
        f.write(f"""authentication:
  - name: users
    password_file: {passwd}
    methods: [password, scram-sha-256]
  - name: certs
    methods: [x509]
listeners:
  - address: 127.0.0.1:{users_port}
    authentication: users
    tls: {{{tls}}}
  - address: 127.0.0.1:{certs_port}
    authentication: certs
    tls: {{{tls}, client_ca: {P('ca.pem')}, client_certs: required}}
""")
    return [E, "broker", "--config", conf, "--log-level", "warn"]


def start_mosquitto(users_port, certs_port):
    passwd = os.path.join(work, "mosquitto.passwd")
    for i, (user, pw) in enumerate(USERS.items()):
        r = subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) +
                           [passwd, user, pw], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mosquitto_passwd: " + r.stderr)
    tls = "cafile %s\ncertfile %s\nkeyfile %s\n" % (P("ca.pem"), P("server.pem"),
                                                    P("server.key"))
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("per_listener_settings true\npersistence false\nlog_dest stderr\n")
        if os.geteuid() == 0:
            f.write("user root\n")
        f.write("listener %d 127.0.0.1\n%sallow_anonymous false\npassword_file %s\n"
                % (users_port, tls, passwd))
        f.write("listener %d 127.0.0.1\n%srequire_certificate true\n"
                "use_identity_as_username true\nallow_anonymous true\n" % (certs_port, tls))
    return [shutil.which("mosquitto"), "-c", conf]


users_port, certs_port = mc.free_port(), mc.free_port()
cmd = (start_mosquitto if args.broker == "mosquitto" else start_edgeplane)(users_port, certs_port)
log = open(os.path.join(work, "broker.log"), "wb")
broker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
log.close()

TLS = ["--cafile", P("ca.pem")]
ALICE = ["-u", "alice", "-P", USERS["alice"]]


def sub(port, topic, extra):
    p = mc.Proc([E, "sub", "-p", str(port), "-t", topic, "-q", "1", "-C", "1", "-W", "20",
                 "-d"] + extra)
    p.wait_line("err", "subscribed to")
    return p


def pub(port, topic, msg, extra):
    return mc.run([E, "pub", "-p", str(port), "-t", topic, "-q", "1", "-m", msg] + extra)


def roundtrip(what, port, sub_extra, pub_extra):
    topic = "tls/" + what.replace(" ", "-")
    s = sub(port, topic, sub_extra)
    rc, _, err = pub(port, topic, "hello " + what, pub_extra)
    R.check("%s: pub exits 0" % what, rc == 0, err.decode(errors="replace"))
    src, out, serr = s.finish()
    R.check("%s: sub got the message" % what, src == 0 and out == ("hello %s\n" % what).encode(),
            "status %d, out %r, err %r" % (src, out, serr[-300:]))


def refused(what, port, extra, needle):
    rc, _, err = pub(port, "tls/refused", "x", extra)
    text = err.decode(errors="replace")
    R.check("%s: pub exits 1" % what, rc == 1, "status %d: %s" % (rc, text))
    R.check("%s: says %r" % (what, needle), needle.lower() in text.lower(), text)
    print("     (%s)" % text.strip().splitlines()[-1] if text.strip() else "")
    return text


def case_tls_password():
    roundtrip("tls password", users_port, TLS + ALICE, TLS + ALICE)


def case_password_file():
    pwf = os.path.join(work, "alice.pw")
    with open(pwf, "w") as f:
        f.write(USERS["alice"] + "\n")
    roundtrip("password file", users_port, TLS + ALICE,
              TLS + ["-u", "alice", "--password-file", pwf])


def case_bad_password():
    refused("bad password", users_port, TLS + ["-u", "alice", "-P", "nope"],
            "not authorized" if args.broker == "mosquitto" else "bad user name or password")


def case_wrong_ca():
    refused("wrong CA", users_port, ["--cafile", P("other-ca.pem")] + ALICE,
            "certificate verify failed")


def case_hostname_mismatch():
    text = refused("host name mismatch", users_port,
                   TLS + ALICE + ["--tls-server-name", "broker.example.com"],
                   "host name mismatch")
    R.check("host name mismatch: names the expected host", "broker.example.com" in text, text)
    # The certificate carries "localhost" as a DNS name: that one passes.
    roundtrip("localhost name", users_port, TLS + ALICE,
              TLS + ALICE + ["-h", "localhost"])


def case_insecure():
    rc, _, err = pub(users_port, "tls/insecure", "x", ["--insecure"] + ALICE)
    R.check("insecure: connects without verification", rc == 0, err.decode(errors="replace"))
    R.check("insecure: warns", b"warning: --insecure" in err, err.decode(errors="replace"))


def case_bad_files():
    """Unusable TLS files are usage errors, reported before connecting."""
    bad = os.path.join(work, "not-a-cert.pem")
    with open(bad, "w") as f:
        f.write("garbage\n")
    for what, extra, needle in (
            ("missing CA file", ["--cafile", os.path.join(work, "nope.pem")],
             "cannot read CA file"),
            ("CA file without certificates", ["--cafile", bad], "cannot load CA file"),
            ("key of another certificate", TLS + ["--cert", P("client.pem"), "--key",
                                                  P("stranger.key")], "mismatch")):
        rc, _, err = pub(users_port, "tls/x", "x", extra + ALICE)
        text = err.decode(errors="replace")
        R.check("%s: exit 2" % what, rc == 2, "status %d: %s" % (rc, text))
        R.check("%s: says %r" % (what, needle), needle in text, text)


def case_mutual_tls():
    cert = ["--cert", P("client.pem"), "--key", P("client.key")]
    roundtrip("mutual tls", certs_port, TLS + cert, TLS + cert)
    # TLS 1.3 reports the missing certificate after the handshake, as an
    # alert on the first read; either way the command fails and says TLS.
    rc, _, err = pub(certs_port, "tls/nocert", "x", TLS)
    text = err.decode(errors="replace")
    R.check("mutual tls without certificate: pub exits 1", rc == 1, text)
    print("     (%s)" % text.strip())
    R.check("mutual tls without certificate: a TLS reason",
            "certificate" in text.lower() or "tls" in text.lower(), text)
    refused("client certificate from an untrusted CA", certs_port,
            TLS + ["--cert", P("stranger.pem"), "--key", P("stranger.key")], "TLS")


def case_scram():
    scram = ["--auth-method", "SCRAM-SHA-256"]
    roundtrip("scram", users_port, TLS + ALICE + scram, TLS + ["-u", "bob", "-P",
                                                               USERS["bob"]] + scram)
    refused("scram bad password", users_port, TLS + ["-u", "bob", "-P", "wrong"] + scram,
            "not authorized")


def case_connector():
    """The connector's broker connection over TLS with SCRAM-SHA-256: it
    logs the connection and its retained online status reaches a
    subscriber through the same kind of connection."""
    pwf = os.path.join(work, "bob.pw")
    with open(pwf, "w") as f:
        f.write(USERS["bob"] + "\n")
    cn = mc.Proc([E, "connector", "--broker", "127.0.0.1:%d" % users_port, "--id", "tls-conn",
                  "--cafile", P("ca.pem"), "--username", "bob", "--password-file", pwf,
                  "--auth-method", "SCRAM-SHA-256", "--log-level", "info"])
    try:
        cn.wait_line("err", "connected to the broker", timeout=20)
        R.check("connector: connected over TLS with SCRAM", True)
        rc, out, err = mc.run([E, "sub", "-p", str(users_port), "-t",
                               "$edgeplane/status/connectors/tls-conn", "-C", "1", "-W", "10",
                               "--auth-method", "SCRAM-SHA-256"] + TLS + ALICE)
        R.check("connector: online status received", rc == 0 and b'"online":true' in out,
                "status %d, out %r, err %r" % (rc, out, err[-300:]))
    finally:
        cn.signal(signal.SIGTERM)
        cn.finish()
    # A CA that did not sign the broker: the log says why, and it retries.
    cn = mc.Proc([E, "connector", "--broker", "127.0.0.1:%d" % users_port, "--id", "tls-bad",
                  "--cafile", P("other-ca.pem"), "--log-level", "info"])
    try:
        line = cn.wait_line("err", "certificate verify failed", timeout=20)
        R.check("connector: wrong CA reported", True, line.decode(errors="replace"))
    finally:
        cn.signal(signal.SIGTERM)
        cn.finish()


try:
    mc.wait_connectable(users_port, broker)
    mc.wait_connectable(certs_port, broker)
    cases = [case_tls_password, case_password_file, case_bad_password, case_wrong_ca,
             case_hostname_mismatch, case_insecure, case_bad_files, case_mutual_tls]
    if args.broker == "edgeplane":
        cases += [case_scram, case_connector]
    for c in cases:
        R.case(c.__name__, c)
finally:
    stop_process(broker, timeout=5)
sys.exit(R.finish(work))
