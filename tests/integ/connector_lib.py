"""Helpers shared by the connector integration tests (connector_metrics.py,
connector_buffer.py): the process, relay and subscriber classes of
connector_e2e.py, plus reading the HTTP endpoints of `--http`.
"""

import http.client
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from api_promcheck import check as promcheck  # noqa: E402
from connector_e2e import (HOST, SKIP, Proc, Relay, Sub, free_port, mqtt,  # noqa: E402,F401
                           points, profile, wait_connectable)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http_get(port, path, timeout=5.0):
    """(status, body text) of GET path."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def scrape(port):
    """Parses /metrics after checking it with api_promcheck: returns
    {(name, frozenset(labels.items())): value}."""
    st, text = http_get(port, "/metrics")
    assert st == 200, "GET /metrics: %d" % st
    errs = promcheck(text)
    assert not errs, "invalid exposition: %s" % errs[:5]
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsed sample line %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """Value of one series, or None when absent."""
    return samples.get((name, frozenset(labels.items())))


def wait_metrics(port, pred, timeout=30.0, what="metrics"):
    """Scrapes until pred(samples) is true; returns the samples."""
    end = time.monotonic() + timeout
    while True:
        s = scrape(port)
        if pred(s):
            return s
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.2)


def wait_http(port, path, status, timeout=30.0):
    """Polls path until it answers with status; returns the body."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            st, body = http_get(port, path)
            last = (st, body)
            if st == status:
                return body
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("GET %s: no %d within %.0fs (last: %r)" % (path, status, timeout, last))


def sim_asset(name, prof, topic, node="ns=2;s=Plant.Oven1.Counter", publishing=100):
    """An asset with one data point, every change published (queueSize keeps
    the server from merging changes)."""
    return """---
apiVersion: edgeplane.io/v1
kind: Asset
metadata: {name: %s}
spec:
  assetEndpointProfileRef: %s
  datasets:
    - name: main
      topic: {path: %s}
      datasetConfiguration: '{"publishingInterval": %d, "samplingInterval": 0, "queueSize": 1000}'
      dataPoints:
        - {name: counter, dataSource: "%s"}
""" % (name, prof, topic, publishing, node)


def apply(ep, work, bport, text):
    import subprocess
    path = os.path.join(work, "res-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([ep, "apply", "-f", path, "--broker", "%s:%d" % (HOST, bport)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "apply exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
