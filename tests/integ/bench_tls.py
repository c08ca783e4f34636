#!/usr/bin/python3
"""`edgeplane bench` over TLS against the edgeplane broker, briefly.

Keeps the TLS paths of the load generator working: a throw-away PKI
(tests/lib/pki.py, python3-cryptography), the broker with a plain and a TLS
listener on ports it picks itself (read from its log), then

- the handshake scenario, closed loop, TLS 1.3 and TLS 1.2: handshakes > 0,
  no errors, the negotiated version is the one asked for;
- the handshake scenario with --tls-resume: sessions are resumed;
- QoS 0 fan-in over TLS at a paced rate (every message must arrive) and at
  max rate (the publishers' writes must not stall);
- QoS 1 fan-in over TLS: received == sent, nothing lost;
- a wrong CA: the generator reports a refused connection (exit status 3).

usage: bench_tls.py EDGEPLANE_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from child_proc import LoggedProcess  # noqa: E402

try:
    from pki import Pki
except ImportError as e:  # reported as a skip, never a pass
    print(f"SKIP: python3-cryptography is missing ({e})")
    sys.exit(77)

BINARY = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EP_BINARY", "")
FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Broker(LoggedProcess):
    def __init__(self, root, pki):
        conf = os.path.join(root, "broker.yaml")
        with open(conf, "w") as f:
            f.write(f"""listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    tls: {{cert: {pki.path('server.pem')}, key: {pki.path('server.key')}}}
""")
        self.spawn([BINARY, "broker", "--config", conf, "--log-level", "info"],
                   os.path.join(root, "broker.log"))
        try:
            self.plain, self.tls = self.wait_ports(2, timeout=15)
        except AssertionError as e:
            self.stop()
            raise SystemExit(str(e))


def bench(port, *args, expect_rc=0):
    cmd = [BINARY, "bench", "--host", "127.0.0.1", "--port", str(port), "--json",
           "--threads", "2", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    print("  $ " + " ".join(cmd[1:]) + "\n  -> " + p.stdout.strip()
          + ("\n  stderr: " + p.stderr.strip() if p.stderr.strip() else ""), flush=True)
    check(p.returncode == expect_rc, f"exit status {p.returncode}, expected {expect_rc}")
    if p.returncode != 0:
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    if not BINARY or not os.access(BINARY, os.X_OK):
        print("usage: bench_tls.py EDGEPLANE_BINARY")
        return 2
    with tempfile.TemporaryDirectory(prefix="ep-bench-tls-") as root:
        pki = Pki(root)
        ca = pki.path("ca.pem")
        broker = Broker(root, pki)
        try:
            short = ["--duration", "1", "--warmup", "0.3"]
            for version in ("1.3", "1.2"):
                r = bench(broker.tls, "--scenario", "handshake", "--connectors", "4",
                          "--cafile", ca, "--tls-version", version, *short)
                if r:
                    check(r["handshakes"] > 0, f"TLS {version}: handshakes in the window")
                    check(r["errors"] == 0, f"TLS {version}: no failed handshake")
                    check(r["tls"].startswith("TLSv" + version),
                          f"TLS {version} negotiated ({r['tls']})")
                    check(r["resumed"] == 0, f"TLS {version}: full handshakes only")
                    check(0 < r["handshake_p50_us"] <= r["handshake_p99_us"],
                          f"TLS {version}: handshake time p50 <= p99")

            r = bench(broker.tls, "--scenario", "handshake", "--connectors", "2", "--cafile", ca,
                      "--tls-resume", *short)
            if r:
                check(r["errors"] == 0, "resumption: no failed handshake")
                check(r["resumed"] > 0, "resumption: sessions resumed")

            r = bench(broker.tls, "--cafile", ca, "--publishers", "4", "--rate", "4000", *short)
            if r:
                check(r["delivered"] > 0, "paced QoS 0 over TLS: deliveries in the window")
                check(r["lost"] == 0 and r["received_total"] == r["sent_total"],
                      "paced QoS 0 over TLS: received == sent")

            # Max rate: the publishers' TLS writes must keep flowing (a short
            # TLS write is one record, not a full socket). What reaches the
            # subscriber depends on the broker's fairness under load, so only
            # "something arrived" is asserted here.
            r = bench(broker.tls, "--cafile", ca, *short)
            if r:
                check(r["sent"] > 10000, "max-rate QoS 0 over TLS: publishers keep writing")
                check(r["received_total"] > 0, "max-rate QoS 0 over TLS: messages arrive")
                check(r["closed"] == 0, "max-rate QoS 0 over TLS: no connection lost")

            r = bench(broker.tls, "--cafile", ca, "--qos", "1", "--publishers", "4", *short)
            if r:
                check(r["delivered"] > 0, "QoS 1 over TLS: deliveries in the window")
                check(r["lost"] == 0 and r["received_total"] == r["sent_total"],
                      "QoS 1 over TLS: received == sent")

            bench(broker.tls, "--scenario", "handshake", "--connectors", "2",
                  "--cafile", pki.path("other-ca.pem"), "--duration", "0.3", expect_rc=3)
            bench(broker.plain, "--scenario", "handshake", "--connectors", "2", "--insecure",
                  "--duration", "0.3", expect_rc=3)
        finally:
            broker.stop()
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
