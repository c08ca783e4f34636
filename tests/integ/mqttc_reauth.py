#!/usr/bin/python3
"""MQTT 5 re-authentication (AUTH 0x19) of the client library against our
broker, over TCP and over TLS.

Usage: mqttc_reauth.py --edgeplane PATH --client PATH

Starts `edgeplane broker` with a SCRAM-SHA-256 user on a plain and a TLS
listener (ports chosen at run time, readiness by TCP connect), and runs
mqttc_reauth_client on each: it must connect, re-authenticate three times
(each confirmed by the client's counter, which counts only server-final
messages whose signature verified), and then be disconnected with 0x87
after its password file was changed to a wrong password.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))
import mqttc_common as mc  # noqa: E402
from child_proc import stop_process  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--edgeplane", required=True)
ap.add_argument("--client", required=True)
args = ap.parse_args()
mc.skip_unless_tools(args, [])
Pki = mc.import_pki()

E = args.edgeplane
R = mc.Results("reauth")
work = mc.workdir("mqttc-reauth")
pki = Pki(work)
passwd = os.path.join(work, "passwd")
r = subprocess.run([E, "passwd", "--password-stdin", "--scram", passwd, "dev"],
                   input="rotate-me\n", text=True, capture_output=True)
if r.returncode != 0:
    raise SystemExit("edgeplane passwd: " + r.stderr)
tcp, tls = mc.free_port(), mc.free_port()
conf = os.path.join(work, "broker.yaml")
with open(conf, "w") as f:
    f.write(f"""authentication:
  - name: users
    password_file: {passwd}
    methods: [scram-sha-256]
listeners:
  - address: 127.0.0.1:{tcp}
    authentication: users
  - address: 127.0.0.1:{tls}
    authentication: users
    tls: {{cert: {pki.path('server.pem')}, key: {pki.path('server.key')}}}
""")
log = open(os.path.join(work, "broker.log"), "wb")
broker = subprocess.Popen([E, "broker", "--config", conf, "--log-level", "info"], stdout=log,
                          stderr=subprocess.STDOUT)
log.close()


def run_client(what, port, extra):
    pwf = os.path.join(work, "pw-" + what)
    with open(pwf, "w") as f:
        f.write("rotate-me\n")
    rc, out, err = mc.run([args.client, str(port), "dev", pwf] + extra, timeout=40)
    lines = out.decode().splitlines()
    R.check("%s: connected, 3 re-authentications, then refused" % what,
            rc == 0 and lines[:4] == ["connected", "reauth 1 ok", "reauth 2 ok", "reauth 3 ok"]
            and lines[-1].endswith("reason 0x87"),
            "status %d, out %r, err %r" % (rc, lines, err[-300:]))


try:
    mc.wait_connectable(tcp, broker)
    mc.wait_connectable(tls, broker)
    R.case("tcp", run_client, "tcp", tcp, [])
    R.case("tls", run_client, "tls", tls, [pki.path("ca.pem")])
finally:
    stop_process(broker, timeout=5)
sys.exit(R.finish(work))
