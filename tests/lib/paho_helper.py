"""A thin, event-driven wrapper over paho-mqtt 1.6.1 for the interop tests.

Every call that has an acknowledgement waits for it (CONNACK, SUBACK,
UNSUBACK, PUBACK/PUBCOMP) on a condition, never on a sleep. Received
messages land in a queue; tests take them with get(), which fails with a
clear message on timeout. Automatic reconnection is off: a disconnect is an
observable event (self.disconnected, self.disconnect_rc), not something the
library papers over.

paho-mqtt comes from Debian (python3-paho-mqtt), so these tests run under
/usr/bin/python3. Import failure makes the caller skip with a reason.
"""

import queue
import socket
import threading
import time
import unittest
import uuid

try:
    import paho.mqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.subscribeoptions import SubscribeOptions
    PAHO_VERSION = paho.mqtt.__version__
    PAHO_MISSING = None
except ImportError as e:  # pragma: no cover
    mqtt = Properties = PacketTypes = SubscribeOptions = None
    PAHO_VERSION = None
    PAHO_MISSING = ("paho-mqtt is not importable by %s (%s); install "
                    "python3-paho-mqtt and run with /usr/bin/python3"
                    % (__import__("sys").executable, e))

V311 = 4
V5 = 5
WAIT = 5.0   # default seconds to wait for an acknowledgement or a message


def require_paho():
    if PAHO_MISSING:
        raise unittest.SkipTest(PAHO_MISSING)


def unique(prefix):
    """A topic or client-id component unique to this run."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def props(packet, **values):
    """Build paho Properties: props("PUBLISH", UserProperty=[...], ...)."""
    p = Properties(getattr(PacketTypes, packet))
    for k, v in values.items():
        setattr(p, k, v)
    return p


def prop(msg_or_props, name, default=None):
    """A property value, or default when absent."""
    # A received message carries .properties; a Properties object is used
    # as is (it has a .properties dict of its own, hence the payload check).
    if hasattr(msg_or_props, "payload"):
        p = msg_or_props.properties
    else:
        p = msg_or_props
    if p is None:
        return default
    return getattr(p, name, default)


class PahoClient:
    def __init__(self, broker, client_id=None, protocol=V5, clean=True,
                 userdata=None):
        require_paho()
        self.broker = broker
        self.protocol = protocol
        self.client_id = client_id if client_id is not None else unique("paho")
        proto = mqtt.MQTTv5 if protocol == V5 else mqtt.MQTTv311
        kw = {}
        if protocol != V5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(client_id=self.client_id, protocol=proto,
                             reconnect_on_failure=False, **kw)
        self.clean = clean
        self.messages = queue.Queue()
        self._cond = threading.Condition()
        self._acks = {}
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.server_reason = None
        self.disconnect_props = None
        c = self.c
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe

    # -- callbacks (network thread) ----------------------------------------
    def _on_connect(self, c, ud, flags, rc, properties=None):
        with self._cond:
            self.connack = (flags, rc, properties)
            self._cond.notify_all()
        self.connected.set()

    def _on_disconnect(self, c, ud, rc, properties=None):
        # A DISCONNECT from the broker arrives as a ReasonCodes object; a
        # lost connection as a plain paho error number.
        self.disconnect_rc = rc
        self.server_reason = rc.value if hasattr(rc, "value") else None
        self.disconnect_props = properties
        self.disconnected.set()
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, c, ud, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, ud, mid, granted, properties=None):
        with self._cond:
            self._acks[mid] = granted
            self._cond.notify_all()

    def _on_unsubscribe(self, c, ud, mid, *rest):
        # v5: (properties, reasonCodes); v3.1.1: nothing
        with self._cond:
            self._acks[mid] = rest[1] if len(rest) > 1 else None
            self._cond.notify_all()

    def _wait(self, pred, timeout, what):
        with self._cond:
            ok = self._cond.wait_for(
                lambda: pred() or self.disconnected.is_set(), timeout)
            if pred():
                return
        if not ok:
            raise AssertionError("%s: no answer within %.1f s" % (what, timeout))
        raise AssertionError("%s: connection lost (rc=%s)"
                             % (what, self.disconnect_rc))

    # -- actions -----------------------------------------------------------
    def will_set(self, topic, payload=b"", qos=0, retain=False,
                 properties=None):
        self.c.will_set(topic, payload, qos, retain, properties)

    def connect(self, keepalive=60, clean_start=True, properties=None,
                timeout=WAIT, expect_rc=0):
        """Connect and wait for CONNACK. Returns (session_present, rc,
        properties)."""
        self.connected.clear()
        self.disconnected.clear()
        kw = {}
        if self.protocol == V5:
            kw["clean_start"] = clean_start
            kw["properties"] = properties
        self.c.connect(self.broker.host, self.broker.port, keepalive, **kw)
        self.c.loop_start()
        self._wait(lambda: self.connack is not None, timeout, "CONNACK")
        flags, rc, cprops = self.connack
        rc_val = rc.value if hasattr(rc, "value") else rc
        if expect_rc is not None and rc_val != expect_rc:
            raise AssertionError("CONNACK reason %s, expected %s"
                                 % (rc, expect_rc))
        return bool(flags.get("session present")), rc_val, cprops

    def subscribe(self, topic, qos=0, options=None, properties=None,
                  timeout=WAIT):
        """Subscribe and wait for SUBACK. Returns the list of granted QoS
        (v3.1.1) or reason code values (v5)."""
        if self.protocol == V5:
            opts = options or SubscribeOptions(qos=qos)
            if isinstance(topic, list):
                arg = topic
            else:
                arg = [(topic, opts)]
            rc, mid = self.c.subscribe(arg, properties=properties)
        else:
            arg = topic if isinstance(topic, list) else [(topic, qos)]
            rc, mid = self.c.subscribe(arg)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "subscribe not sent: %s" % rc
        self._wait(lambda: mid in self._acks, timeout, "SUBACK")
        granted = self._acks.pop(mid)
        return [g.value if hasattr(g, "value") else g for g in granted]

    def unsubscribe(self, topics, timeout=WAIT):
        rc, mid = self.c.unsubscribe(topics)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "unsubscribe not sent: %s" % rc
        self._wait(lambda: mid in self._acks, timeout, "UNSUBACK")
        codes = self._acks.pop(mid)
        if codes is None:
            return None
        if not isinstance(codes, list):
            codes = [codes]
        return [c.value if hasattr(c, "value") else c for c in codes]

    def publish(self, topic, payload=b"", qos=0, retain=False,
                properties=None, timeout=WAIT):
        """Publish; for QoS 1/2 wait until the broker completed the flow."""
        info = self.c.publish(topic, payload, qos, retain,
                              properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("publish to %r failed: rc=%s" % (topic, info.rc))
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError("publish to %r (QoS %d) not acknowledged "
                                 "within %.1f s" % (topic, qos, timeout))
        return info

    def get(self, timeout=WAIT, what="a message"):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: nothing received within %.1f s (client %s)"
                                 % (what, timeout, self.client_id)) from None

    def get_n(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            out.append(self.get(max(0.0, deadline - time.monotonic()),
                                "message %d of %d" % (len(out) + 1, n)))
        return out

    def pending(self):
        """Messages already received and not yet taken (non-blocking)."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def disconnect(self, reason=None, properties=None, timeout=WAIT):
        """Clean DISCONNECT (v5 reason code optional), wait for the close."""
        kw = {}
        if self.protocol == V5:
            if reason is not None:
                from paho.mqtt.reasoncodes import ReasonCodes
                kw["reasoncode"] = ReasonCodes(PacketTypes.DISCONNECT,
                                               identifier=reason)
            kw["properties"] = properties
        self.c.disconnect(**kw)
        self.disconnected.wait(timeout)
        self.c.loop_stop()

    def kill(self):
        """Drop the TCP connection without DISCONNECT (abnormal loss)."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(WAIT)
        self.c.loop_stop()

    def wait_disconnected(self, timeout=WAIT):
        if not self.disconnected.wait(timeout):
            raise AssertionError("client %s still connected after %.1f s"
                                 % (self.client_id, timeout))
        return self.disconnect_rc

    def close(self):
        """Best-effort teardown for cleanups."""
        try:
            if not self.disconnected.is_set() and self.connected.is_set():
                self.c.disconnect()
                self.disconnected.wait(2)
        except Exception:
            pass
        try:
            self.c.loop_stop()
        except Exception:
            pass
