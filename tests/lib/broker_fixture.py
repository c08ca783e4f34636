"""Broker-under-test fixture for the interop and hostile-input suites.

Standard library only. One test process may start many brokers; each one
gets a fresh loopback port chosen at run time, is probed for readiness by
TCP connect (never a fixed sleep), and is stopped by pid (SIGTERM, then
SIGKILL) in tearDown and again at exit.

Which broker runs is chosen by the environment:

  EP_TEST_BROKER=mosquitto   run `mosquitto -c <generated conf>`; this is how
                             the suite itself is validated while the edgeplane
                             broker is being written.
  EP_BINARY=/path/edgeplane  run `$EP_BINARY broker --listen 127.0.0.1:PORT
                             --log-level warn [--config FILE]`.

EP_TEST_BROKER wins when both are set. With neither (or with a binary that
does not exist) every test is skipped with the reason printed: a missing
broker is never a silent pass.

Limits a test needs are passed as a dict using the edgeplane key names in
LIMIT_KEYS below (the broker's own keys, docs/broker.md). They are written
as YAML for edgeplane (tests/interop/README.md lists what the suite relies
on) and translated to the equivalent mosquitto.conf lines for Mosquitto. A
setting Mosquitto has no equivalent for makes the test skip under the
Mosquitto fixture only.
"""

import atexit
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from child_proc import free_port

READY_TIMEOUT = 10.0      # seconds until the broker must accept TCP connections
STOP_TIMEOUT = 5.0        # seconds between SIGTERM and SIGKILL
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------
# The edgeplane configuration keys the suite relies on, in one place. They
# are the broker's own keys (src/svc/broker/config.c, docs/broker.md); the
# YAML written for `edgeplane broker --config` is
#
#   broker:
#     sys_interval: 1s            # only when a test sets it
#     limits:
#       max_packet_size: 1048576  # only the limits the test sets
#       ...
#
# name -> (python type, unit written to YAML, allowed values or None).
# Tests pass plain numbers: seconds for durations, bytes for sizes.
LIMIT_KEYS = {
    "max_connections": (int, "", None),
    "max_packet_size": (int, "", None),          # bytes
    "max_queued_messages": (int, "", None),
    "max_queued_bytes": (int, "", None),         # bytes (>= 1024)
    "queue_policy": (str, "", ("drop_oldest", "refuse_new")),
    "max_inflight": (int, "", None),
    "receive_maximum": (int, "", None),
    "max_outbuf": (int, "", None),               # bytes
    "max_topic_length": (int, "", None),
    "max_topic_levels": (int, "", None),
    "max_subscriptions_per_client": (int, "", None),
    "max_session_expiry": (int, "s", None),      # seconds
    "max_keepalive": (int, "s", None),           # seconds
    "topic_alias_maximum": (int, "", None),
    "connect_timeout": (int, "ms", None),        # milliseconds
    "max_client_id_length": (int, "", None),
}
# Broker-level (non-limit) settings a test may set.
BROKER_KEYS = {
    "sys_interval": (int, "s", None),            # seconds
}

# The same settings for Mosquitto 2.0: edgeplane key -> (scope, option
# [, adjustment]). scope "global" lines go before the listener, "listener"
# lines after it. Mosquitto 2.0.11 admits one connection more than its
# max_connections, hence the -1 for an equivalent limit.
_MOSQUITTO_OPTIONS = {
    "max_packet_size": ("global", "max_packet_size"),
    "max_queued_messages": ("global", "max_queued_messages"),
    "max_queued_bytes": ("global", "max_queued_bytes"),
    "max_inflight": ("global", "max_inflight_messages"),
    "max_keepalive": ("global", "max_keepalive"),
    "sys_interval": ("global", "sys_interval"),
    "max_connections": ("listener", "max_connections", -1),
    "topic_alias_maximum": ("listener", "max_topic_alias"),
}
# Mosquitto always refuses new messages when a session queue is full.
_MOSQUITTO_FIXED = {"queue_policy": "refuse_new"}


def validate_limits(limits, table=None):
    """Raise ValueError for an unknown key, a wrong type or a bad value."""
    table = LIMIT_KEYS if table is None else table
    for key, value in (limits or {}).items():
        if key not in table:
            raise ValueError("unknown broker setting %r (known: %s)"
                             % (key, ", ".join(sorted(table))))
        typ, _unit, allowed = table[key]
        if not isinstance(value, typ) or isinstance(value, bool):
            raise ValueError("broker limit %s must be %s, got %r"
                             % (key, typ.__name__, value))
        if allowed is not None and value not in allowed:
            raise ValueError("broker limit %s must be one of %s, got %r"
                             % (key, allowed, value))


def edgeplane_config_yaml(limits, settings=None):
    """The YAML document given to `edgeplane broker --config`."""
    validate_limits(limits)
    validate_limits(settings, BROKER_KEYS)
    lines = ["# Generated by tests/lib/broker_fixture.py", "broker:"]
    for key in sorted(settings or {}):
        lines.append("  %s: %s%s" % (key, settings[key], BROKER_KEYS[key][1]))
    if limits:
        lines.append("  limits:")
        for key in sorted(limits):
            lines.append("    %s: %s%s" % (key, limits[key],
                                          LIMIT_KEYS[key][1]))
    return "\n".join(lines) + "\n"


def mosquitto_config(port, limits, settings=None):
    """mosquitto.conf text equivalent to edgeplane_config_yaml(limits).

    Raises unittest.SkipTest when a setting has no Mosquitto equivalent.
    """
    validate_limits(limits)
    validate_limits(settings, BROKER_KEYS)
    global_lines = [
        "# Generated by tests/lib/broker_fixture.py",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        # Mosquitto started as root switches to user "mosquitto", and a
        # credential change clears the parent-death signal that takes the
        # broker down with a killed test process.
        global_lines.append("user root")
    listener_lines = ["listener %d %s" % (port, HOST),
                      "allow_anonymous true"]
    merged = dict(settings or {})
    merged.update(limits or {})
    for key in sorted(merged):
        value = merged[key]
        if key in _MOSQUITTO_FIXED:
            if value != _MOSQUITTO_FIXED[key]:
                raise unittest.SkipTest(
                    "mosquitto only supports %s=%s"
                    % (key, _MOSQUITTO_FIXED[key]))
            continue
        if key not in _MOSQUITTO_OPTIONS:
            raise unittest.SkipTest(
                "mosquitto has no equivalent of broker limit %s" % key)
        scope, option = _MOSQUITTO_OPTIONS[key][:2]
        adjust = (_MOSQUITTO_OPTIONS[key][2:] or (0,))[0]
        line = "%s %s" % (option, value + adjust)
        (global_lines if scope == "global" else listener_lines).append(line)
    return "\n".join(global_lines + listener_lines) + "\n"


# ---------------------------------------------------------------------------
# Broker selection.

def _find_mosquitto():
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def select_broker():
    """Return (kind, path, reason). kind is 'mosquitto', 'edgeplane' or None;
    reason explains a None."""
    want = os.environ.get("EP_TEST_BROKER", "").strip()
    if want and want not in ("mosquitto", "edgeplane"):
        return None, None, ("EP_TEST_BROKER=%r is not one of mosquitto, "
                            "edgeplane" % want)
    if want == "mosquitto":
        path = _find_mosquitto()
        if path is None:
            return None, None, ("EP_TEST_BROKER=mosquitto but no mosquitto "
                                "executable found (apt-get install mosquitto)")
        return "mosquitto", path, None
    binary = os.environ.get("EP_BINARY", "").strip()
    if not binary:
        return None, None, ("no broker under test: set EP_BINARY=<path to "
                            "edgeplane> or EP_TEST_BROKER=mosquitto")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return None, None, "EP_BINARY=%s is not an executable file" % binary
    return "edgeplane", binary, None


BROKER_KIND, BROKER_PATH, BROKER_UNAVAILABLE = select_broker()


def is_mosquitto():
    return BROKER_KIND == "mosquitto"


def describe_broker():
    if BROKER_KIND is None:
        return "broker under test: none (%s)" % BROKER_UNAVAILABLE
    return "broker under test: %s (%s)" % (BROKER_KIND, BROKER_PATH)


# ---------------------------------------------------------------------------
# Process handling.

def _raise_nofile_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 16
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


_raise_nofile_limit()   # the hostile suite opens thousands of sockets

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    # Take the broker down with the test process even if the test process
    # is killed without running its atexit handlers.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_live_brokers = set()
_live_lock = threading.Lock()


def _stop_all():
    with _live_lock:
        brokers = list(_live_brokers)
    for b in brokers:
        b.stop()


atexit.register(_stop_all)


class BrokerStartError(AssertionError):
    """The broker did not become ready; the message carries its stderr."""


class Broker:
    """One running broker under test."""

    def __init__(self, limits=None, settings=None, kind=None, path=None):
        self.kind = kind or BROKER_KIND
        self.path = path or BROKER_PATH
        if self.kind is None:
            raise unittest.SkipTest(BROKER_UNAVAILABLE)
        self.limits = dict(limits or {})
        self.settings = dict(settings or {})
        validate_limits(self.limits)
        validate_limits(self.settings, BROKER_KEYS)
        self.host = HOST
        self.port = None
        self.proc = None
        self._dir = tempfile.mkdtemp(prefix="ep-interop-")
        self._stderr_path = os.path.join(self._dir, "broker.stderr")
        self._stderr = None
        self.argv = None

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        last_error = None
        for _attempt in range(3):
            self.port = free_port()
            argv = self._argv(self.port)
            self.argv = argv
            self._stderr = open(self._stderr_path, "ab")
            self._stderr.write(("--- %s\n" % " ".join(argv)).encode())
            self._stderr.flush()
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                stderr=self._stderr, cwd=self._dir,
                preexec_fn=_child_setup, close_fds=True)
            with _live_lock:
                _live_brokers.add(self)
            try:
                self._wait_ready()
                return self
            except BrokerStartError as e:
                last_error = e
                in_use = "in use" in self.stderr_text().lower()
                self.stop()
                if not in_use:     # only a lost port race is worth a retry
                    break
        raise last_error

    def _argv(self, port):
        if self.kind == "mosquitto":
            conf = os.path.join(self._dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(mosquitto_config(port, self.limits, self.settings))
            return [self.path, "-c", conf]
        argv = [self.path, "broker", "--listen", "%s:%d" % (HOST, port),
                "--log-level", "warn"]
        if self.limits or self.settings:
            conf = os.path.join(self._dir, "edgeplane.yaml")
            with open(conf, "w") as f:
                f.write(edgeplane_config_yaml(self.limits, self.settings))
            argv += ["--config", conf]
        return argv

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        delay = 0.005
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerStartError(
                    "broker exited with status %s before accepting "
                    "connections on %s:%d\n%s"
                    % (rc, HOST, self.port, self._stderr_report()))
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    "broker did not accept connections on %s:%d within %.0f s"
                    "\n%s" % (HOST, self.port, READY_TIMEOUT,
                              self._stderr_report()))
            # Poll back-off for the readiness probe, not a synchronisation
            # sleep: the loop ends as soon as the port accepts.
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def stop(self):
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        with _live_lock:
            _live_brokers.discard(self)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- inspection ---------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        """Resident set size of the broker process in KiB (VmRSS)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for broker pid %d" % self.pid)

    def stderr_text(self):
        try:
            with open(self._stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _stderr_report(self, limit=8000):
        text = self.stderr_text()
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return "---- broker output (%s) ----\n%s---- end of broker output ----" % (
            self._stderr_path, text)

    def url(self):
        return "mqtt://%s:%d" % (HOST, self.port)


# ---------------------------------------------------------------------------
# unittest integration.

DEFAULT_TEST_TIMEOUT = 30.0


class TestTimeout(AssertionError):
    pass


def timeout(seconds):
    """Decorator: per-test wall-clock limit (default DEFAULT_TEST_TIMEOUT)."""
    def deco(fn):
        fn.__ep_timeout__ = float(seconds)
        return fn
    return deco


def mosquitto_deviation(reason):
    """The test states the spec (or edgeplane's documented) behaviour and
    Mosquitto 2.0.11 does otherwise: expected failure under the Mosquitto
    fixture only, strict for edgeplane. `reason` says how Mosquitto deviates.
    """
    def deco(fn):
        fn.__ep_mosquitto_deviation__ = reason
        if is_mosquitto():
            fn = unittest.expectedFailure(fn)
        return fn
    return deco


def mosquitto_unsupported(reason):
    """Skip under the Mosquitto fixture only (feature or knob it lacks)."""
    return unittest.skipIf(is_mosquitto(),
                           "mosquitto 2.0.11 does not support this: " + reason)


class BrokerTestCase(unittest.TestCase):
    """Base class: per-test timeout, broker lifecycle, failure reports.

    `self.broker` starts a broker with default settings on first use;
    `self.start_broker(limits)` starts one with limits. Brokers started by a
    test are stopped in cleanup, and their stderr is appended to the failure
    message of a test that failed.
    """

    default_timeout = DEFAULT_TEST_TIMEOUT

    def run(self, result=None):
        method = getattr(self, self._testMethodName)
        limit = getattr(method, "__ep_timeout__", self.default_timeout)

        def on_alarm(signum, frame):
            raise TestTimeout("test exceeded its %.0f s time limit" % limit)

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return super().run(result)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def setUp(self):
        super().setUp()
        if BROKER_KIND is None:
            self.skipTest(BROKER_UNAVAILABLE)
        self._brokers = []
        self._broker = None

    def start_broker(self, limits=None, settings=None):
        b = Broker(limits, settings)
        self._brokers.append(b)
        self.addCleanup(b.cleanup)
        b.start()
        if self._broker is None:
            self._broker = b
        return b

    @property
    def broker(self):
        if self._broker is None:
            self.start_broker()
        return self._broker

    def broker_report(self):
        return "\n".join(b._stderr_report() for b in self._brokers)


# ---------------------------------------------------------------------------
# Runner: verbose unittest output plus the closing summary line.

class _Result(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0
        self.deviations = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        method = getattr(test, getattr(test, "_testMethodName", ""), None)
        reason = getattr(method, "__ep_mosquitto_deviation__", "")
        self.deviations.append((test.id(), reason))

    def _with_broker_output(self, test, err):
        text = self._exc_info_to_string(err, test)
        if issubclass(err[0], BrokerStartError):
            return text            # already carries the broker's output
        if isinstance(test, BrokerTestCase) and getattr(test, "_brokers", None):
            text += "\n" + test.broker_report()
        return text

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.failures[-1] = (test, self._with_broker_output(test, err))

    def addError(self, test, err):
        super().addError(test, err)
        self.errors[-1] = (test, self._with_broker_output(test, err))


class _Runner(unittest.TextTestRunner):
    resultclass = _Result

    def __init__(self, stream=None, **kw):
        # One stream, so the verbose lines, the failure reports and the
        # closing summary line come out in order.
        super().__init__(stream=stream or sys.stdout, **kw)


SKIP_EXIT_CODE = 77   # ctest SKIP_RETURN_CODE: every test was skipped


def summary_line(passed, failed, skipped):
    return "%d passed, %d failed, %d skipped" % (passed, failed, skipped)


def main():
    """Entry point for a test module: `if __name__ == "__main__": main()`."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    print(describe_broker(), flush=True)
    prog = unittest.main(module="__main__", testRunner=_Runner, verbosity=2,
                         exit=False)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    skipped = len(r.skipped)
    if r.deviations:
        print("expected failures under mosquitto (documented deviations):")
        for tid, reason in r.deviations:
            print("  %s: %s" % (tid, reason))
    _stop_all()
    sys.stdout.flush()
    sys.stderr.flush()
    print(summary_line(r.passed, failed, skipped), flush=True)
    if failed:
        sys.exit(1)
    if r.passed == 0 and skipped > 0:
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)


if __name__ == "__main__":
    # `python3 broker_fixture.py` starts one broker and prints its port:
    # handy for poking at it by hand.
    b = Broker().start()
    print("%s listening on %s:%d (pid %d); Ctrl-C stops it"
          % (b.kind, b.host, b.port, b.pid), flush=True)
    try:
        b.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.cleanup()
