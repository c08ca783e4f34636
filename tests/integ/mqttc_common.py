"""Shared helpers for the MQTT client integration tests (mqttc_*.py).

Standard library only. Each test script starts its own broker - Mosquitto
or `edgeplane broker` - on a loopback port chosen at run time, waits until
a TCP connect succeeds (never a fixed sleep), and stops it by pid. Client
processes are read line by line through background threads so a test can
wait for a specific line (a readiness signal) with a deadline.

A script ends with the summary line `N passed, N failed` and exits 0 when
nothing failed, 1 otherwise, and 77 (ctest SKIP_RETURN_CODE) when a peer it
needs is not installed - reported, never silently passed.
"""

import argparse
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))
from child_proc import free_port  # noqa: E402

HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
SKIP = 77


def wait_connectable(port, proc=None, timeout=READY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("broker exited with status %d before accepting connections"
                               % proc.returncode)
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing accepted connections on port %d within %.0f s" % (port, timeout))


class Broker:
    """A broker process on a fixed port that can be stopped and restarted."""

    def __init__(self, kind, edgeplane, workdir, port=None):
        self.kind = kind
        self.edgeplane = edgeplane
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, "broker-%s-%d.log" % (self.kind, self.starts)), "wb")
        if self.kind == "mosquitto":
            conf = os.path.join(self.workdir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d %s\nallow_anonymous true\n" % (self.port, HOST))
                f.write("max_queued_messages 10000\n")
            cmd = [shutil.which("mosquitto"), "-c", conf]
        else:
            cmd = [self.edgeplane, "broker", "--listen", "%s:%d" % (HOST, self.port),
                   "--log-level", "warn"]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_connectable(self.port, self.proc)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self):
        self.stop(signal.SIGKILL)


class Proc:
    """A client process whose stdout/stderr lines can be awaited."""

    def __init__(self, cmd, stdin=False, env=None):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out = queue.Queue()
        self.err = queue.Queue()
        self.out_lines = []
        self.err_lines = []
        self._threads = [threading.Thread(target=self._pump, args=(self.p.stdout, self.out),
                                          daemon=True),
                         threading.Thread(target=self._pump, args=(self.p.stderr, self.err),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line)
        q.put(None)

    def _next(self, which, timeout):
        q, keep = (self.out, self.out_lines) if which == "out" else (self.err, self.err_lines)
        line = q.get(timeout=timeout)
        if line is not None:
            keep.append(line)
        return line

    def wait_line(self, which, needle, timeout=10.0):
        """Returns the first line (bytes) of stdout/stderr containing needle."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%r not seen on %s of %s within %.0f s; got %r"
                                   % (needle, which, self.cmd[1:3], timeout,
                                      (self.out_lines if which == "out" else self.err_lines)[-5:]))
            try:
                line = self._next(which, left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("%s of %s closed before %r; got %r"
                                   % (which, self.cmd[1:3], needle,
                                      (self.out_lines if which == "out" else self.err_lines)[-5:]))
            if needle.encode() in line:
                return line

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def finish(self, timeout=20.0):
        """Waits for exit; returns (status, stdout bytes, stderr bytes)."""
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise RuntimeError("%s did not exit within %.0f s" % (self.cmd[1:3], timeout))
        for t in self._threads:
            t.join(timeout=5)
        for which in ("out", "err"):
            while True:
                try:
                    if self._next(which, 0) is None:
                        break
                except queue.Empty:
                    break
        err = b"".join(self.err_lines)
        check_sanitizers(self.cmd, err)
        return self.p.returncode, b"".join(self.out_lines), err

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:")


def check_sanitizers(cmd, err):
    """A sanitizer report from a client process fails the case outright."""
    for mark in SANITIZER_MARKS:
        if mark in err:
            raise RuntimeError("sanitizer report from %s:\n%s" % (" ".join(cmd[:3]),
                                                                  err.decode(errors="replace")))


def run(cmd, timeout=30.0, stdin=None):
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    check_sanitizers(cmd, p.stderr)
    return p.returncode, p.stdout, p.stderr


class Results:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return cond

    def case(self, what, fn, *args):
        """Runs a scenario; an exception counts as one failure."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - report and go on with the next case
            self.failed += 1
            print("FAIL %s: %s" % (what, e))
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()

    def finish(self, work=None):
        """Prints the summary; removes the work directory (broker logs) unless
        something failed."""
        if work and self.failed == 0:
            shutil.rmtree(work, ignore_errors=True)
        elif work:
            print("broker logs kept in %s" % work)
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        return 0 if self.failed == 0 else 1


def parse_args(need_broker=True):
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeplane", required=True, help="path to the edgeplane binary")
    if need_broker:
        ap.add_argument("--broker", choices=("mosquitto", "edgeplane"), required=True)
    return ap.parse_args()


def skip_unless_tools(args, tools):
    """Exits with SKIP (after saying why) when a peer tool is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.access(args.edgeplane, os.X_OK):
        missing.append(args.edgeplane)
    if missing:
        print("skipped: not installed: %s" % ", ".join(missing))
        print("0 passed, 0 failed")
        sys.exit(SKIP)


def import_pki():
    """tests/lib/pki.py's Pki; exits with SKIP (after saying why) when
    python3-cryptography is missing."""
    try:
        from pki import Pki
    except ImportError as e:
        print("skipped: python3-cryptography missing (%s)" % e)
        print("0 passed, 0 failed")
        sys.exit(SKIP)
    return Pki


def workdir(prefix):
    return tempfile.mkdtemp(prefix="ep-%s-" % prefix)
