#!/usr/bin/python3
"""Runs test_mqttjs.js (node:test, MQTT.js) against a broker started by the
shared fixture.

The broker's address goes to node in EP_MQTT_HOST / EP_MQTT_PORT. node
prints its spec report and then, through js/summary_reporter.mjs, the
closing line "N passed, N failed, N skipped"; its exit status is ours.
Without node, without the installed MQTT.js (npm ci in tests/interop) or
without a broker under test the run is skipped with the reason printed,
and ends with the same closing line (exit status 77, ctest's skip code).

The broker's output is printed after a failed run.
"""

import os
import re
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "lib"))

from broker_fixture import (BROKER_KIND, BROKER_UNAVAILABLE, SKIP_EXIT_CODE,  # noqa: E402
                            Broker, describe_broker, summary_line)

INTEROP = os.path.normpath(os.path.join(HERE, os.pardir))
SCRIPT = os.path.join(HERE, "test_mqttjs.js")
REPORTER = os.path.join(HERE, "js", "summary_reporter.mjs")
RUN_TIMEOUT = 240
SUMMARY_RE = re.compile(r"^\d+ passed, \d+ failed, \d+ skipped$")


def skip(reason):
    print("SKIP test_mqttjs.js: %s" % reason)
    print(summary_line(0, 0, 1), flush=True)
    return SKIP_EXIT_CODE


def main():
    print(describe_broker(), flush=True)
    node = shutil.which("node")
    if node is None:
        return skip("node is not installed (apt-get install nodejs)")
    if not os.path.isfile(os.path.join(INTEROP, "node_modules", "mqtt",
                                       "package.json")):
        return skip("MQTT.js is not installed: run `npm ci` in %s" % INTEROP)
    if BROKER_KIND is None:
        return skip(BROKER_UNAVAILABLE)
    broker = Broker()
    try:
        broker.start()
    except AssertionError as e:
        print("FAIL: broker did not start: %s" % e)
        print(summary_line(0, 1, 0), flush=True)
        return 1
    env = dict(os.environ, EP_MQTT_HOST=broker.host,
               EP_MQTT_PORT=str(broker.port))
    argv = [node, "--test-reporter=spec", "--test-reporter-destination=stdout",
            "--test-reporter=" + REPORTER,
            "--test-reporter-destination=stdout", SCRIPT]
    closing = None
    proc = subprocess.Popen(argv, env=env, cwd=HERE, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(RUN_TIMEOUT, kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            # Hold node's closing line back so that it stays the last line.
            if SUMMARY_RE.match(line.strip()):
                closing = line.strip()
            else:
                sys.stdout.write(line)
                sys.stdout.flush()
        rc = proc.wait()
    finally:
        watchdog.cancel()
        alive = broker.alive()
        broker.stop()
    if timed_out.is_set():
        print("FAIL: test_mqttjs.js did not finish within %d s" % RUN_TIMEOUT)
        rc = rc or 1
    if not alive:
        print("FAIL: the broker exited during the run")
        rc = rc or 1
    if rc != 0:
        print(broker._stderr_report())
    passed, failed, skipped = (map(int, re.findall(r"\d+", closing))
                               if closing else (0, 0, 0))
    if rc != 0 and failed == 0:
        failed = 1          # the run failed outside any single test
    print(summary_line(passed, failed, skipped), flush=True)
    broker.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
