"""Raw MQTT 3.1.1 / 5.0 packets over a plain socket (standard library only).

Used where a real client library cannot express the case: malformed or
hostile input, exact reason codes, a subscriber that withholds PUBACKs to
observe Receive Maximum, a client that stops sending PINGREQ.

Encoders build packets byte by byte so tests can corrupt them; the decoder
understands everything a broker sends to a client. Nothing here is clever on
purpose: it follows the packet layouts of MQTT 3.1.1 section 3 and MQTT 5.0
section 3 directly.
"""

import select
import socket
import struct
import time

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
    10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5.0 reason codes used by the tests.
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_IMPL_SPECIFIC = 0x83
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_RECEIVE_MAX_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97

# property id -> (name, kind)
PROPS = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROP_IDS = {name: pid for pid, (name, _) in PROPS.items()}


class MalformedFromServer(AssertionError):
    """The broker sent bytes this decoder cannot parse."""


# ---------------------------------------------------------------------------
# Primitive encoders.

def varint(n, min_len=1):
    """Variable Byte Integer. min_len > natural length pads with 0x80
    continuation bytes, which is how tests build over-long encodings."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n > 0 or len(out) + 1 < min_len:
            b |= 0x80
        out.append(b)
        if n == 0 and len(out) >= min_len:
            break
    return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def mqtt_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def mqtt_bin(b):
    return u16(len(b)) + bytes(b)


def properties(props):
    """Encode a property list [(name, value), ...] (or a dict) with its
    length prefix. user_property values are (key, value) pairs."""
    if props is None:
        props = []
    if isinstance(props, dict):
        props = list(props.items())
    body = bytearray()
    for name, value in props:
        pid = PROP_IDS[name]
        kind = PROPS[pid][1]
        body += varint(pid)
        if kind == "byte":
            body.append(value)
        elif kind == "u16":
            body += u16(value)
        elif kind == "u32":
            body += u32(value)
        elif kind == "varint":
            body += varint(value)
        elif kind == "str":
            body += mqtt_str(value)
        elif kind == "bin":
            body += mqtt_bin(value)
        elif kind == "pair":
            body += mqtt_str(value[0]) + mqtt_str(value[1])
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    """Fixed header + body with a correct Remaining Length."""
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


# ---------------------------------------------------------------------------
# Client -> server packets.

def connect(client_id="", version=V5, keepalive=60, clean=True, props=None,
            will=None, username=None, password=None):
    """CONNECT. will = dict(topic, payload, qos=0, retain=False, props=[])."""
    flags = 0
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    vh = mqtt_str("MQTT") + bytes([version, flags]) + u16(keepalive)
    if version == V5:
        vh += properties(props)
    pl = mqtt_str(client_id)
    if will is not None:
        if version == V5:
            pl += properties(will.get("props"))
        pl += mqtt_str(will["topic"]) + mqtt_bin(will.get("payload", b""))
    if username is not None:
        pl += mqtt_str(username)
    if password is not None:
        pl += mqtt_bin(password)
    return packet(CONNECT, 0, vh + pl)


def publish(topic, payload=b"", qos=0, mid=None, retain=False, dup=False,
            version=V5, props=None):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = mqtt_str(topic)
    if qos > 0:
        body += u16(mid)
    if version == V5:
        body += properties(props)
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(PUBLISH, flags, body + payload)


def _ack(ptype, flags, mid, rc=None, version=V5):
    body = u16(mid)
    if version == V5 and rc is not None:
        body += bytes([rc])
    return packet(ptype, flags, body)


def puback(mid, rc=None, version=V5):
    return _ack(PUBACK, 0, mid, rc, version)


def pubrec(mid, rc=None, version=V5):
    return _ack(PUBREC, 0, mid, rc, version)


def pubrel(mid, rc=None, version=V5):
    return _ack(PUBREL, 2, mid, rc, version)


def pubcomp(mid, rc=None, version=V5):
    return _ack(PUBCOMP, 0, mid, rc, version)


def subscribe(mid, filters, version=V5, props=None, flags=0x02):
    """filters: [(topic_filter, options_byte)]; v3.1.1 options = QoS."""
    body = u16(mid)
    if version == V5:
        body += properties(props)
    for topic, opts in filters:
        body += mqtt_str(topic) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(mid, filters, version=V5, props=None):
    body = u16(mid)
    if version == V5:
        body += properties(props)
    for topic in filters:
        body += mqtt_str(topic)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(rc=None, version=V5, props=None):
    if version != V5 or (rc is None and not props):
        return packet(DISCONNECT, 0, b"")
    body = bytes([rc or 0])
    if props:
        body += properties(props)
    return packet(DISCONNECT, 0, body)


# ---------------------------------------------------------------------------
# Server -> client decoding.

class Props(list):
    """Decoded properties: a list of (name, value) in wire order."""

    def get(self, name, default=None):
        for n, v in self:
            if n == name:
                return v
        return default

    def all(self, name):
        return [v for n, v in self if n == name]

    def has(self, name):
        return any(n == name for n, _ in self)


class Packet:
    def __init__(self, ptype, flags, body):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.props = Props()
        self.rc = None
        self.mid = None

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "type%d" % self.type)

    def __repr__(self):
        fields = {k: v for k, v in self.__dict__.items()
                  if k not in ("type", "flags", "body") and v not in (None, [])}
        return "<%s %s>" % (self.name, fields)


def _read_varint(buf, pos):
    mult, value = 1, 0
    for i in range(4):
        if pos >= len(buf):
            raise MalformedFromServer("truncated variable byte integer")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult *= 128
    raise MalformedFromServer("variable byte integer longer than 4 bytes")


def _read_str(buf, pos):
    (n,) = struct.unpack_from("!H", buf, pos)
    raw = bytes(buf[pos + 2:pos + 2 + n])
    if len(raw) != n:
        raise MalformedFromServer("truncated string")
    return raw, pos + 2 + n


def _read_props(buf, pos):
    length, pos = _read_varint(buf, pos)
    end = pos + length
    out = Props()
    while pos < end:
        pid, pos = _read_varint(buf, pos)
        if pid not in PROPS:
            raise MalformedFromServer("unknown property 0x%02x" % pid)
        name, kind = PROPS[pid]
        if kind == "byte":
            v = buf[pos]
            pos += 1
        elif kind == "u16":
            (v,) = struct.unpack_from("!H", buf, pos)
            pos += 2
        elif kind == "u32":
            (v,) = struct.unpack_from("!I", buf, pos)
            pos += 4
        elif kind == "varint":
            v, pos = _read_varint(buf, pos)
        elif kind == "str":
            raw, pos = _read_str(buf, pos)
            v = raw.decode("utf-8")
        elif kind == "bin":
            v, pos = _read_str(buf, pos)
        else:
            k, pos = _read_str(buf, pos)
            val, pos = _read_str(buf, pos)
            v = (k.decode("utf-8"), val.decode("utf-8"))
        out.append((name, v))
    if pos != end:
        raise MalformedFromServer("property length mismatch")
    return out, end


def decode(ptype, flags, body, version):
    p = Packet(ptype, flags, body)
    v5 = version == V5
    if ptype == CONNACK:
        p.session_present = bool(body[0] & 1)
        p.rc = body[1]
        if v5 and len(body) > 2:
            p.props, _ = _read_props(body, 2)
    elif ptype == PUBLISH:
        p.qos = (flags >> 1) & 3
        p.retain = bool(flags & 1)
        p.dup = bool(flags & 8)
        raw, pos = _read_str(body, 0)
        p.topic = raw.decode("utf-8")
        if p.qos:
            (p.mid,) = struct.unpack_from("!H", body, pos)
            pos += 2
        if v5:
            p.props, pos = _read_props(body, pos)
        p.payload = bytes(body[pos:])
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        (p.mid,) = struct.unpack_from("!H", body, 0)
        p.rc = body[2] if len(body) > 2 else 0
        if v5 and len(body) > 3:
            p.props, _ = _read_props(body, 3)
    elif ptype in (SUBACK, UNSUBACK):
        (p.mid,) = struct.unpack_from("!H", body, 0)
        pos = 2
        if v5:
            p.props, pos = _read_props(body, pos)
        p.codes = list(body[pos:])
    elif ptype == DISCONNECT:
        p.rc = body[0] if body else 0
        if v5 and len(body) > 1:
            p.props, _ = _read_props(body, 1)
    elif ptype == AUTH:
        p.rc = body[0] if body else 0
        if len(body) > 1:
            p.props, _ = _read_props(body, 1)
    return p


# ---------------------------------------------------------------------------
# Client.

class Closed(Exception):
    """The peer closed the connection; .packets holds what came first."""

    def __init__(self, packets):
        super().__init__("connection closed by the broker")
        self.packets = packets


class RawClient:
    """A blocking socket client speaking raw MQTT.

    recv() returns one decoded Packet or raises Closed (EOF/reset) or
    TimeoutError. Nothing is acknowledged automatically unless auto_ack is
    set, so tests control exactly what the broker sees.
    """

    def __init__(self, host, port, version=V5, timeout=5.0, rcvbuf=None,
                 connect_timeout=5.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(connect_timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._next_mid = 1
        self.closed = False

    # -- sending ------------------------------------------------------------
    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def try_send(self, data):
        """send() that reports a reset/closed peer as False instead of
        raising: a hostile test may be cut off while still writing."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def mid(self):
        m = self._next_mid
        self._next_mid = m % 65535 + 1
        return m

    # -- receiving ----------------------------------------------------------
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the broker")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the broker") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed([])
        self._buf += chunk

    def recv(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            parsed = self._parse_one()
            if parsed is not None:
                return parsed
            self._fill(deadline)

    def _parse_one(self):
        buf = self._buf
        if len(buf) < 2:
            return None
        mult, length, pos = 1, 0, 1
        while True:
            if pos >= len(buf):
                return None
            b = buf[pos]
            length += (b & 0x7F) * mult
            pos += 1
            if not b & 0x80:
                break
            mult *= 128
            if pos > 4:
                raise MalformedFromServer("remaining length > 4 bytes")
        if len(buf) < pos + length:
            return None
        first = buf[0]
        body = bytes(buf[pos:pos + length])
        del buf[:pos + length]
        return decode(first >> 4, first & 0x0F, body, self.version)

    def recv_type(self, ptype, timeout=None, skip=()):
        """Next packet of type ptype; packets whose type is in skip are
        dropped, anything else is an assertion failure."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            p = self.recv(max(0.0, deadline - time.monotonic()))
            if p.type == ptype:
                return p
            if p.type not in skip:
                raise AssertionError("expected %s, got %r"
                                     % (PACKET_NAMES[ptype], p))

    def expect_closed(self, timeout=5.0):
        """Wait until the broker closes the connection. Returns the packets
        received before the close; AssertionError if it stays open."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError(
                    "broker kept the connection open for %.1f s (received %r)"
                    % (timeout, got)) from None

    def is_open_now(self):
        """True if no EOF is pending right now (non-blocking check)."""
        r, _, _ = select.select([self.sock], [], [], 0)
        if not r:
            return True
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except (ConnectionResetError, OSError):
            return False
        return bool(data)

    # -- helpers ------------------------------------------------------------
    def handshake(self, client_id="", keepalive=60, clean=True, props=None,
                  will=None):
        """Send CONNECT and return the CONNACK (asserting success)."""
        self.send(connect(client_id, self.version, keepalive, clean, props,
                          will))
        ack = self.recv_type(CONNACK)
        if ack.rc != 0:
            raise AssertionError("CONNACK refused: %r" % ack)
        return ack

    def sub(self, topic, options=1, props=None):
        mid = self.mid()
        self.send(subscribe(mid, [(topic, options)], self.version, props))
        ack = self.recv_type(SUBACK)
        if ack.mid != mid:
            raise AssertionError("SUBACK for mid %d, expected %d"
                                 % (ack.mid, mid))
        return ack

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0): a client that vanished."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
