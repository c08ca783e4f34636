"""child_proc.py - processes a Python test starts and must stop again.

Standard library only. Owns what the interop and integration tests repeated
for their own brokers and helper servers: a loopback port chosen at run time,
a child whose output goes to a log file, the listening ports a broker
started on port 0 reports in that log (read until they appear, never after
a fixed sleep), and stopping a child by pid (SIGTERM, then SIGKILL).
"""
import re
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket()
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL after timeout seconds; reaps the child."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def listening_ports(text):
    """The ports of the "listening on 127.0.0.1:PORT" log lines, in order."""
    return [int(p) for p in _LISTENING.findall(text)]


class LoggedProcess:
    """A child with stdout and stderr in a log file."""

    def spawn(self, args, log_path, **popen_args):
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     **popen_args)

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def wait_ports(self, count, timeout=10.0):
        """The first count listening ports from the log; AssertionError (with
        the log) when the child exits or they do not appear within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            ports = listening_ports(self.output())
            if len(ports) >= count:
                return ports[:count]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("broker did not start:\n" + self.output())
            time.sleep(0.05)

    def stop(self):
        stop_process(self.proc)
        self.log.close()
