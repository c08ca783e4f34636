#!/usr/bin/python3
"""Interop: Eclipse paho-mqtt 1.6.1 (Python, Debian) against the broker.

Run with /usr/bin/python3 (the Debian interpreter that sees
python3-paho-mqtt). The broker under test is chosen by the fixture:
EP_BINARY=<edgeplane> or EP_TEST_BROKER=mosquitto (tests/lib/broker_fixture.py).

Layout:
  PahoCommon     cases that hold for MQTT 3.1.1 and 5.0 alike, run twice
                 (PahoV311 and PahoV5)
  PahoV5Only     MQTT 5.0 features: properties, expiry, subscription options
                 and identifiers, shared subscriptions, will delay, reason
                 codes, flow control, topic aliases, request/response

Where a real client cannot express a case (withholding acknowledgements,
replaying a QoS 2 PUBLISH, stopping PINGREQs) the test drives the broker
with the raw client from tests/lib/mqtt_raw.py; paho still sits on the other
end of the exchange.

Spec references are to MQTT 5.0 (OASIS, 2019) unless marked 3.1.1.
"""

import os
import queue
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "lib"))

import mqtt_raw as raw  # noqa: E402
from broker_fixture import (BrokerTestCase, is_mosquitto, main,  # noqa: E402
                            mosquitto_deviation, timeout)
from paho_helper import (V5, V311, PahoClient, SubscribeOptions, prop,  # noqa: E402
                         props, require_paho, unique)


# How late after 1.5 x Keep Alive the broker may close an idle connection.
# Mosquitto 2.0.11 sweeps keep alives only every 5 s (keepalive__check runs
# when last_keepalive_check + 5 < now), so it can be up to ~6 s late; that
# is a timer resolution, not a protocol deviation. edgeplane is held to 1.5 s.
KEEPALIVE_LATENESS = 6.5 if is_mosquitto() else 1.5
# Mosquitto refuses max_keepalive values below 10.
SERVER_KEEPALIVE = 10 if is_mosquitto() else 2


def collect_split(a, b, n, timeout):
    """Payloads received by a and by b until together they hold n (or the
    time runs out); waits on the queues, 20 ms at a time per queue."""
    got_a, got_b = [], []
    deadline = time.monotonic() + timeout
    while len(got_a) + len(got_b) < n and time.monotonic() < deadline:
        for c, acc in ((a, got_a), (b, got_b)):
            try:
                acc.append(c.messages.get(timeout=0.02).payload)
            except queue.Empty:
                pass
    got_a += [m.payload for m in a.pending()]
    got_b += [m.payload for m in b.pending()]
    return got_a, got_b


class _PahoBase(BrokerTestCase):
    PROTO = V5

    def setUp(self):
        super().setUp()
        require_paho()
        self.t = unique(self._testMethodName[5:25])   # per-test topic root

    def client(self, client_id=None, protocol=None, clean=True, broker=None):
        c = PahoClient(broker or self.broker, client_id=client_id,
                       protocol=protocol or self.PROTO, clean=clean)
        self.addCleanup(c.close)
        return c

    def connected(self, **kw):
        """A connected client; kw goes to PahoClient."""
        connect_kw = {k: kw.pop(k) for k in ("keepalive", "clean_start",
                                              "properties") if k in kw}
        c = self.client(**kw)
        c.connect(**connect_kw)
        return c

    def raw(self, version=None, **kw):
        r = raw.RawClient(self.broker.host, self.broker.port,
                          version=version or self.PROTO, **kw)
        self.addCleanup(r.close)
        return r

    def persistent_connect(self, c, expiry=300):
        """Connect keeping the session after disconnect (v3.1.1 clean
        session 0; v5 clean start 0 with a session expiry)."""
        if c.protocol == V5:
            return c.connect(clean_start=False, properties=props(
                "CONNECT", SessionExpiryInterval=expiry))
        return c.connect()

    def assert_next_payloads(self, c, expected, timeout=5.0):
        got = [m.payload for m in c.get_n(len(expected), timeout)]
        self.assertEqual(got, expected)


class PahoCommon:
    """Mixed into one class per protocol version."""

    # -- delivery ----------------------------------------------------------
    def test_qos_levels_delivered_at_min_of_publish_and_subscription(self):
        sub2 = self.connected()
        sub1 = self.connected()
        self.assertEqual(sub2.subscribe(self.t + "/q", 2), [2])
        self.assertEqual(sub1.subscribe(self.t + "/q", 1), [1])
        pub = self.connected()
        for qos in (0, 1, 2):
            pub.publish(self.t + "/q", b"qos%d" % qos, qos)
            m = sub2.get(what="QoS %d at subscription QoS 2" % qos)
            self.assertEqual((m.topic, m.payload, m.qos, m.retain),
                             (self.t + "/q", b"qos%d" % qos, qos, False))
            m = sub1.get(what="QoS %d at subscription QoS 1" % qos)
            self.assertEqual((m.payload, m.qos), (b"qos%d" % qos, min(qos, 1)))

    def test_ordering_and_count_qos1(self):
        sub = self.connected()
        sub.subscribe(self.t + "/o", 1)
        pub = self.connected()
        payloads = [b"m%03d" % i for i in range(200)]
        for p in payloads:
            pub.c.publish(self.t + "/o", p, 1)
        self.assert_next_payloads(sub, payloads, timeout=10)

    def test_wildcards(self):
        sub = self.connected()
        sub.subscribe(self.t + "/+/temp", 1)
        sub2 = self.connected()
        sub2.subscribe(self.t + "/plant/#", 1)
        pub = self.connected()
        for topic in ("plant/temp", "plant/a/temp", "x/temp", "plant",
                      "plant/a/b/temp", "end"):
            pub.publish(self.t + "/" + topic, topic.encode(), 1)
        # '+' matches exactly one level.
        self.assertEqual([m.topic for m in sub.get_n(2)],
                         [self.t + "/plant/temp", self.t + "/x/temp"])
        # '#' matches the parent level and any number of levels below.
        self.assertEqual([m.topic for m in sub2.get_n(4)],
                         [self.t + "/plant/temp", self.t + "/plant/a/temp",
                          self.t + "/plant", self.t + "/plant/a/b/temp"])
        pub.publish(self.t + "/x/temp", b"sentinel", 1)
        self.assertEqual(sub.get().payload, b"sentinel")

    def test_overlapping_subscriptions_deliver_one_copy_at_max_qos(self):
        # MQTT-3.3.4-2: the delivery respects the maximum QoS of all matching
        # subscriptions. Sending extra copies is a MAY; edgeplane's contract
        # is a single copy (docs: tests/interop/README.md).
        sub = self.connected()
        sub.subscribe(self.t + "/#", 0)
        sub.subscribe(self.t + "/+/c", 2)
        sub.subscribe(self.t + "/b/c", 1)
        pub = self.connected()
        pub.publish(self.t + "/b/c", b"one", 2)
        pub.publish(self.t + "/b/c", b"end", 2)
        m = sub.get()
        self.assertEqual((m.payload, m.qos), (b"one", 2))
        self.assertEqual(sub.get().payload, b"end",
                         "a second copy of the first message was delivered")

    # -- retained ----------------------------------------------------------
    def test_retained_set_receive_replace_clear(self):
        pub = self.connected()
        pub.publish(self.t + "/r", b"v1", 1, retain=True)
        pub.publish(self.t + "/r", b"v2", 1, retain=True)   # replaces v1
        sub = self.connected()
        sub.subscribe(self.t + "/#", 1)
        m = sub.get(what="retained message on subscribe")
        self.assertEqual((m.topic, m.payload, m.retain, m.qos),
                         (self.t + "/r", b"v2", True, 1))
        # A live message to a subscribed client carries retain 0
        # (3.1.1 3.3.1.3; v5 retain-as-published defaults to 0).
        pub.publish(self.t + "/r", b"live", 1, retain=True)
        m = sub.get()
        self.assertEqual((m.payload, m.retain), (b"live", False))
        # An empty retained payload clears it and is not stored.
        pub.publish(self.t + "/r", b"", 1, retain=True)
        self.assertEqual(sub.get().payload, b"")
        late = self.connected()
        late.subscribe(self.t + "/#", 1)
        pub.publish(self.t + "/sentinel", b"s", 1)
        m = late.get()
        self.assertEqual((m.topic, m.payload), (self.t + "/sentinel", b"s"),
                         "a cleared retained message was still delivered")

    # -- will ---------------------------------------------------------------
    def test_will_published_on_abnormal_disconnect(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        w = self.client()
        w.will_set(self.t + "/will", b"gone", 1, False)
        w.connect()
        w.kill()
        m = watch.get(what="will message")
        self.assertEqual((m.topic, m.payload, m.qos), (self.t + "/will", b"gone", 1))

    def test_will_not_published_on_normal_disconnect(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        w = self.client()
        w.will_set(self.t + "/will", b"gone", 1, False)
        w.connect()
        w.disconnect()
        other = self.connected()
        other.publish(self.t + "/will", b"sentinel", 1)
        self.assertEqual(watch.get().payload, b"sentinel",
                         "will was published after a normal DISCONNECT")

    @timeout(20)
    def test_keep_alive_expiry_closes_and_publishes_will(self):
        # 3.1.2.10 (both versions): no packet for 1.5 x Keep Alive -> the
        # server closes the connection as if the network had failed; the
        # will is published.
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        r = self.raw()
        r.handshake("ka-" + self.t, keepalive=2,
                    will={"topic": self.t + "/will", "payload": b"ka", "qos": 1})
        t0 = time.monotonic()
        got = r.expect_closed(timeout=3.0 + KEEPALIVE_LATENESS + 1)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 2.0, "closed before the keep alive")
        self.assertLessEqual(elapsed, 3.0 + KEEPALIVE_LATENESS,
                             "closed long after 1.5 x keep alive")
        for p in got:   # v5 allows DISCONNECT 0x8D Keep Alive timeout first
            self.assertEqual((p.type, p.rc), (raw.DISCONNECT, raw.RC_KEEP_ALIVE_TIMEOUT))
        self.assertEqual(watch.get(what="will after keep alive expiry").payload, b"ka")

    # -- sessions -----------------------------------------------------------
    @timeout(20)
    def test_persistent_session_queues_qos1_qos2_while_offline(self):
        cid = "sess-" + self.t
        s = self.client(client_id=cid, clean=False)
        present, _, _ = self.persistent_connect(s)
        self.assertFalse(present, "session present on a brand-new session")
        s.subscribe(self.t + "/q", 2)
        s.disconnect()
        pub = self.connected()
        pub.publish(self.t + "/q", b"q1", 1)
        pub.publish(self.t + "/q", b"q2", 2)
        pub.publish(self.t + "/q", b"q1b", 1)
        s2 = self.client(client_id=cid, clean=False)
        present, _, _ = self.persistent_connect(s2)
        self.assertTrue(present, "session present flag not set on resume")
        got = [(m.payload, m.qos) for m in s2.get_n(3)]
        # Order is guaranteed per topic and QoS (4.6, MQTT-4.6.0-6), not
        # across QoS levels.
        self.assertEqual(sorted(got), [(b"q1", 1), (b"q1b", 1), (b"q2", 2)])
        self.assertEqual([p for p, q in got if q == 1], [b"q1", b"q1b"])
        # The subscription itself survived too.
        pub.publish(self.t + "/q", b"live", 1)
        self.assertEqual(s2.get().payload, b"live")

    def test_clean_session_discards_previous_session(self):
        cid = "clean-" + self.t
        s = self.client(client_id=cid, clean=False)
        self.persistent_connect(s)
        s.subscribe(self.t + "/q", 1)
        s.disconnect()
        s2 = self.client(client_id=cid, clean=True)
        present, _, _ = s2.connect(clean_start=True) if s2.protocol == V5 \
            else s2.connect()
        self.assertFalse(present)
        s2.subscribe(self.t + "/other", 1)
        pub = self.connected()
        pub.publish(self.t + "/q", b"old-sub", 1)
        pub.publish(self.t + "/other", b"sentinel", 1)
        self.assertEqual(s2.get().payload, b"sentinel",
                         "a subscription from the discarded session matched")

    def test_session_takeover_closes_old_connection(self):
        cid = "take-" + self.t
        old = self.raw()
        old.handshake(cid)
        new = self.connected(client_id=cid)
        got = old.expect_closed(timeout=5)
        if self.PROTO == V5:
            # MQTT-3.1.4-3: DISCONNECT 0x8E Session taken over, then close.
            self.assertEqual([(p.type, p.rc) for p in got],
                             [(raw.DISCONNECT, raw.RC_SESSION_TAKEN_OVER)])
        else:
            # 3.1.1 MQTT-3.1.4-2: the existing connection is closed.
            self.assertEqual(got, [], "3.1.1 has no server DISCONNECT")
        self.assertFalse(new.disconnected.is_set())
        new.subscribe(self.t + "/x", 1)
        new.publish(self.t + "/x", b"still-here", 1)
        self.assertEqual(new.get().payload, b"still-here")

    # -- QoS 2 exactly once -------------------------------------------------
    def test_qos2_inbound_duplicate_publish_delivered_once(self):
        sub = self.connected()
        sub.subscribe(self.t + "/x", 2)
        p = self.raw()
        p.handshake("q2in-" + self.t)
        v = self.PROTO
        p.send(raw.publish(self.t + "/x", b"once", 2, mid=7, version=v))
        self.assertEqual(p.recv_type(raw.PUBREC).mid, 7)
        # Retransmission before PUBREL: acknowledged again, never delivered
        # twice (4.3.3, MQTT-4.3.3-9/-10).
        p.send(raw.publish(self.t + "/x", b"once", 2, mid=7, dup=True, version=v))
        self.assertEqual(p.recv_type(raw.PUBREC).mid, 7)
        p.send(raw.pubrel(7, version=v))
        self.assertEqual(p.recv_type(raw.PUBCOMP).mid, 7)
        p.send(raw.publish(self.t + "/x", b"after", 2, mid=8, version=v))
        self.assertEqual(p.recv_type(raw.PUBREC).mid, 8)
        p.send(raw.pubrel(8, version=v))
        self.assertEqual(p.recv_type(raw.PUBCOMP).mid, 8)
        self.assert_next_payloads(sub, [b"once", b"after"])

    def _raw_persistent(self, cid, clean):
        """Raw connection whose session outlives it (v3.1.1 needs clean
        session 0 from the start; v5 uses a session expiry)."""
        r = self.raw()
        if self.PROTO == V5:
            ack = r.handshake(cid, clean=clean,
                              props=[("session_expiry_interval", 300)])
        else:
            ack = r.handshake(cid, clean=clean)
        return r, ack

    def test_qos2_outbound_resumes_pubrel_after_reconnect(self):
        cid = "q2out-" + self.t
        r, _ = self._raw_persistent(cid, self.PROTO == V5)
        r.sub(self.t + "/x", 2)
        pub = self.connected()
        pub.publish(self.t + "/x", b"m1", 2)
        p = r.recv_type(raw.PUBLISH)
        self.assertEqual((p.payload, p.qos), (b"m1", 2))
        r.send(raw.pubrec(p.mid, version=self.PROTO))
        rel = r.recv_type(raw.PUBREL)
        self.assertEqual(rel.mid, p.mid)
        r.abort()                               # PUBCOMP never sent
        r2, ack = self._raw_persistent(cid, False)
        self.assertTrue(ack.session_present)
        # MQTT-4.4.0-1: resend the PUBREL, not the PUBLISH.
        rel2 = r2.recv_type(raw.PUBREL)
        self.assertEqual(rel2.mid, p.mid)
        r2.send(raw.pubcomp(p.mid, version=self.PROTO))
        pub.publish(self.t + "/x", b"m2", 2)
        nxt = r2.recv_type(raw.PUBLISH)
        self.assertEqual(nxt.payload, b"m2", "m1 was delivered a second time")

    def test_qos2_outbound_resends_publish_with_dup_before_pubrec(self):
        cid = "q2dup-" + self.t
        r, _ = self._raw_persistent(cid, self.PROTO == V5)
        r.sub(self.t + "/x", 2)
        pub = self.connected()
        pub.publish(self.t + "/x", b"m1", 2)
        p = r.recv_type(raw.PUBLISH)
        r.abort()                               # PUBREC never sent
        r2, ack = self._raw_persistent(cid, False)
        self.assertTrue(ack.session_present)
        again = r2.recv_type(raw.PUBLISH)
        # MQTT-4.4.0-1 / MQTT-3.3.1-1: same packet id, DUP set.
        self.assertEqual((again.payload, again.mid, again.dup, again.qos),
                         (b"m1", p.mid, True, 2))
        r2.send(raw.pubrec(again.mid, version=self.PROTO))
        self.assertEqual(r2.recv_type(raw.PUBREL).mid, again.mid)
        r2.send(raw.pubcomp(again.mid, version=self.PROTO))
        pub.publish(self.t + "/x", b"m2", 2)
        self.assertEqual(r2.recv_type(raw.PUBLISH).payload, b"m2")


class PahoV311(PahoCommon, _PahoBase):
    PROTO = V311

    @mosquitto_deviation(
        "Mosquitto 2.0.11 sends the single copy at the QoS of one matching "
        "subscription (QoS 1 here), not the maximum (MQTT-3.3.5-1 in 3.1.1)")
    def test_overlapping_subscriptions_deliver_one_copy_at_max_qos(self):
        super().test_overlapping_subscriptions_deliver_one_copy_at_max_qos()


class PahoV5(PahoCommon, _PahoBase):
    PROTO = V5

    @mosquitto_deviation(
        "for MQTT 5 subscribers Mosquitto 2.0.11 sends one PUBLISH per "
        "matching subscription (the MAY of 3.3.4); edgeplane sends one copy")
    def test_overlapping_subscriptions_deliver_one_copy_at_max_qos(self):
        super().test_overlapping_subscriptions_deliver_one_copy_at_max_qos()

    @mosquitto_deviation(
        "Mosquitto 2.0.11 closes the old MQTT 5 connection without the "
        "DISCONNECT 0x8E that MQTT-3.1.4-3 says the server sends")
    def test_session_takeover_closes_old_connection(self):
        super().test_session_takeover_closes_old_connection()


class PahoV5Only(_PahoBase):
    PROTO = V5

    # -- properties ----------------------------------------------------------
    def test_publish_properties_round_trip(self):
        sub = self.connected()
        sub.subscribe(self.t + "/p", 1)
        pub = self.connected()
        user = [("b", "2"), ("a", "1"), ("b", "1"), ("unicode", "\u00e9\u4e2d")]
        pub.publish(self.t + "/p", "h\u00e9llo".encode(), 1, properties=props(
            "PUBLISH", UserProperty=user, PayloadFormatIndicator=1,
            ContentType="text/plain; charset=utf-8",
            ResponseTopic=self.t + "/reply", CorrelationData=b"\x00\x01corr\xff",
            MessageExpiryInterval=3600))
        m = sub.get()
        self.assertEqual(m.payload, "h\u00e9llo".encode())
        # MQTT-3.3.2-17/-18: user properties forwarded unaltered, in order,
        # duplicates kept.
        self.assertEqual(prop(m, "UserProperty"), user)
        self.assertEqual(prop(m, "PayloadFormatIndicator"), 1)   # MQTT-3.3.2-4
        self.assertEqual(prop(m, "ContentType"), "text/plain; charset=utf-8")
        self.assertEqual(prop(m, "ResponseTopic"), self.t + "/reply")
        self.assertEqual(prop(m, "CorrelationData"), b"\x00\x01corr\xff")
        expiry = prop(m, "MessageExpiryInterval")
        self.assertIsNotNone(expiry, "message expiry interval dropped")
        self.assertTrue(3595 <= expiry <= 3600, expiry)

    def test_no_properties_added_when_none_sent(self):
        sub = self.connected()
        sub.subscribe(self.t + "/p", 1)
        pub = self.connected()
        pub.publish(self.t + "/p", b"bare", 1)
        m = sub.get()
        for name in ("UserProperty", "PayloadFormatIndicator", "ContentType",
                     "ResponseTopic", "CorrelationData",
                     "MessageExpiryInterval", "SubscriptionIdentifier"):
            self.assertIsNone(prop(m, name), "unexpected %s" % name)

    @timeout(25)
    def test_message_expiry_decremented_and_expired_not_delivered(self):
        cid = "exp-" + self.t
        s = self.client(client_id=cid)
        self.persistent_connect(s)
        s.subscribe(self.t + "/e", 1)
        s.disconnect()
        pub = self.connected()
        pub.publish(self.t + "/e", b"short", 1,
                    properties=props("PUBLISH", MessageExpiryInterval=1))
        pub.publish(self.t + "/e", b"long", 1,
                    properties=props("PUBLISH", MessageExpiryInterval=30))
        t0 = time.monotonic()
        # Let the short one expire while the session is offline: waiting
        # for time to pass is the point of this test.
        time.sleep(2.5)
        s2 = self.client(client_id=cid)
        present, _, _ = self.persistent_connect(s2)
        self.assertTrue(present)
        m = s2.get()
        waited = time.monotonic() - t0
        # MQTT-3.3.2-5: expired copies are not delivered.
        self.assertEqual(m.payload, b"long", "expired message was delivered")
        # MQTT-3.3.2-6: the interval is reduced by the time spent waiting.
        expiry = prop(m, "MessageExpiryInterval")
        self.assertIsNotNone(expiry)
        self.assertLessEqual(expiry, 30 - int(waited) + 1)
        self.assertGreaterEqual(expiry, 30 - int(waited) - 2)
        self.assertLess(expiry, 30, "expiry interval not decremented")

    # -- subscription identifiers and options -------------------------------
    @mosquitto_deviation(
        "for MQTT 5 subscribers Mosquitto 2.0.11 sends one PUBLISH per "
        "matching subscription, each with one identifier (the MAY of 3.3.4), "
        "where edgeplane sends one PUBLISH carrying every identifier")
    def test_subscription_identifiers_single_copy_all_ids(self):
        sub = self.connected()
        sub.subscribe(self.t + "/#", 0,
                      properties=props("SUBSCRIBE", SubscriptionIdentifier=11))
        sub.subscribe(self.t + "/+/c", 2,
                      properties=props("SUBSCRIBE", SubscriptionIdentifier=22))
        sub.subscribe(self.t + "/b/c", 1)                 # no identifier
        pub = self.connected()
        pub.publish(self.t + "/b/c", b"one", 2)
        pub.publish(self.t + "/b/c", b"end", 2)
        m = sub.get()
        self.assertEqual((m.payload, m.qos), (b"one", 2))
        # MQTT-3.3.4-3/-4: all matching identifiers, order not significant.
        self.assertEqual(sorted(prop(m, "SubscriptionIdentifier", [])), [11, 22])
        self.assertEqual(sub.get().payload, b"end",
                         "a second copy of the first message was delivered")

    def test_subscription_identifier_per_subscription(self):
        sub = self.connected()
        sub.subscribe(self.t + "/a", 1,
                      properties=props("SUBSCRIBE", SubscriptionIdentifier=1))
        sub.subscribe(self.t + "/b", 1,
                      properties=props("SUBSCRIBE", SubscriptionIdentifier=268435455))
        sub.subscribe(self.t + "/c", 1)
        pub = self.connected()
        for t in ("a", "b", "c"):
            pub.publish(self.t + "/" + t, t.encode(), 1)
        got = [(m.payload, prop(m, "SubscriptionIdentifier")) for m in sub.get_n(3)]
        self.assertEqual(got, [(b"a", [1]), (b"b", [268435455]), (b"c", None)])

    def test_no_local(self):
        me = self.connected()
        me.subscribe(self.t + "/n", options=SubscribeOptions(qos=1, noLocal=True))
        me.publish(self.t + "/n", b"mine", 1)
        other = self.connected()
        other.publish(self.t + "/n", b"theirs", 1)
        # MQTT-3.8.3-3: own messages are not forwarded.
        self.assertEqual(me.get().payload, b"theirs")

    def test_retain_as_published(self):
        rap = self.connected()
        rap.subscribe(self.t + "/r", options=SubscribeOptions(
            qos=1, retainAsPublished=True))
        plain = self.connected()
        plain.subscribe(self.t + "/r", options=SubscribeOptions(qos=1))
        pub = self.connected()
        pub.publish(self.t + "/r", b"kept", 1, retain=True)
        self.addCleanup(lambda: pub.publish(self.t + "/r", b"", 1, retain=True))
        # MQTT-3.3.1-12/-13.
        m = rap.get()
        self.assertEqual((m.payload, m.retain), (b"kept", True))
        m = plain.get()
        self.assertEqual((m.payload, m.retain), (b"kept", False))

    def test_retain_handling_0_1_2(self):
        pub = self.connected()
        pub.publish(self.t + "/r", b"stored", 1, retain=True)
        topic = self.t + "/r"

        def sentinel(c):
            pub.publish(topic, b"live", 1)
            return c.get().payload

        # 0: retained messages sent at every subscribe (MQTT-3.3.1-9).
        c0 = self.connected()
        c0.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=0))
        self.assertEqual(c0.get().payload, b"stored")
        c0.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=0))
        self.assertEqual(c0.get().payload, b"stored", "not resent on re-subscribe")
        self.assertEqual(sentinel(c0), b"live")
        # 1: only when the subscription is new (MQTT-3.3.1-10).
        c1 = self.connected()
        c1.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=1))
        self.assertEqual(c1.get().payload, b"stored")
        c1.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=1))
        self.assertEqual(sentinel(c1), b"live",
                         "retained message resent for an existing subscription")
        # 2: never (MQTT-3.3.1-11).
        c2 = self.connected()
        c2.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=2))
        self.assertEqual(sentinel(c2), b"live",
                         "retained message sent with retain handling 2")
        pub.publish(topic, b"", 1, retain=True)

    # -- shared subscriptions -------------------------------------------------
    def test_shared_subscription_distributes_without_duplicates(self):
        g = "$share/g%s/%s/s" % (self.t[-6:], self.t)
        a = self.connected()
        b = self.connected()
        self.assertEqual(a.subscribe(g, 1), [1])
        self.assertEqual(b.subscribe(g, 1), [1])
        full = self.connected()
        full.subscribe(self.t + "/s", 1)   # ordinary subscriber on the same topic
        pub = self.connected()
        n = 40
        for i in range(n):
            pub.publish(self.t + "/s", b"%02d" % i, 1)
        # Every message reaches the ordinary subscriber...
        self.assertEqual([m.payload for m in full.get_n(n)],
                         [b"%02d" % i for i in range(n)])
        # ...and exactly one member of the group (4.8.2).
        got_a, got_b = collect_split(a, b, n, timeout=5)
        self.assertEqual(sorted(got_a + got_b), [b"%02d" % i for i in range(n)],
                         "lost or duplicated shared-subscription messages")
        self.assertTrue(got_a and got_b, "one group member got everything "
                        "(a=%d, b=%d)" % (len(got_a), len(got_b)))
        for part in (got_a, got_b):   # each member sees its share in order
            self.assertEqual(part, sorted(part))
        for msg in a.pending() + b.pending():
            self.fail("extra shared delivery %r" % msg.payload)

    # -- will -------------------------------------------------------------------
    def _will_client(self, cid, delay, expiry=60):
        w = self.client(client_id=cid)
        w.will_set(self.t + "/will", b"delayed", 1, False,
                   properties=props("WILLMESSAGE", WillDelayInterval=delay))
        w.connect(clean_start=False, properties=props(
            "CONNECT", SessionExpiryInterval=expiry))
        return w

    @timeout(20)
    def test_will_delay_sent_after_delay(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        w = self._will_client("wd-" + self.t, delay=2)
        t0 = time.monotonic()
        w.kill()
        m = watch.get(timeout=6, what="delayed will")
        elapsed = time.monotonic() - t0
        self.assertEqual(m.payload, b"delayed")
        # 3.1.3.2.2: published once the delay has passed (second-granularity
        # timers may fire up to a second early of the exact instant).
        self.assertGreaterEqual(elapsed, 1.0, "will published without its delay")
        self.assertLessEqual(elapsed, 4.5)

    @timeout(20)
    def test_will_delay_not_sent_when_client_reconnects_within_delay(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        cid = "wr-" + self.t
        w = self._will_client(cid, delay=2)
        w.kill()
        w2 = self.client(client_id=cid)
        present, _, _ = w2.connect(clean_start=False, properties=props(
            "CONNECT", SessionExpiryInterval=60))
        self.assertTrue(present)
        # Observe past the delay (MQTT-3.1.3-9: must not be sent).
        time.sleep(3.0)
        w2.publish(self.t + "/will", b"sentinel", 1)
        self.assertEqual(watch.get().payload, b"sentinel",
                         "will sent although the client came back in time")

    def test_will_sent_on_disconnect_with_will_message_0x04(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        w = self.client()
        w.will_set(self.t + "/will", b"asked-for", 1, False)
        w.connect()
        w.disconnect(reason=raw.RC_DISCONNECT_WITH_WILL)
        self.assertEqual(watch.get(what="will after DISCONNECT 0x04").payload,
                         b"asked-for")

    def test_will_properties_forwarded(self):
        watch = self.connected()
        watch.subscribe(self.t + "/will", 1)
        w = self.client()
        w.will_set(self.t + "/will", b"{}", 1, False, properties=props(
            "WILLMESSAGE", ContentType="application/json",
            UserProperty=[("reason", "lost")], ResponseTopic=self.t + "/r",
            CorrelationData=b"cd"))
        w.connect()
        w.kill()
        m = watch.get()
        self.assertEqual(prop(m, "ContentType"), "application/json")
        self.assertEqual(prop(m, "UserProperty"), [("reason", "lost")])
        self.assertEqual(prop(m, "ResponseTopic"), self.t + "/r")
        self.assertEqual(prop(m, "CorrelationData"), b"cd")

    # -- connection-level features -------------------------------------------
    def test_assigned_client_identifier(self):
        a = self.client(client_id="")
        _, rc, p = a.connect()
        ida = prop(p, "AssignedClientIdentifier")
        self.assertTrue(ida, "no Assigned Client Identifier (MQTT-3.2.2-16)")
        b = self.client(client_id="")
        _, _, p = b.connect()
        self.assertNotEqual(prop(p, "AssignedClientIdentifier"), ida)
        # It is a working identity: messages reach it.
        a.subscribe(self.t + "/x", 1)
        b.publish(self.t + "/x", b"to-assigned", 1)
        self.assertEqual(a.get().payload, b"to-assigned")

    def test_session_present_and_expiry_in_connack(self):
        cid = "sp-" + self.t
        c = self.client(client_id=cid)
        present, _, p = c.connect(clean_start=False, properties=props(
            "CONNECT", SessionExpiryInterval=120))
        self.assertFalse(present)
        c.disconnect()
        c2 = self.client(client_id=cid)
        present, _, _ = c2.connect(clean_start=False, properties=props(
            "CONNECT", SessionExpiryInterval=120))
        self.assertTrue(present)
        c2.disconnect()
        c3 = self.client(client_id=cid)
        present, _, _ = c3.connect(clean_start=True)
        self.assertFalse(present, "clean start must discard the session")

    @timeout(20)
    def test_session_expiry_zero_discards_on_disconnect(self):
        cid = "se0-" + self.t
        c = self.client(client_id=cid)
        c.connect(clean_start=False, properties=props(
            "CONNECT", SessionExpiryInterval=0))
        c.subscribe(self.t + "/x", 1)
        c.disconnect()
        c2 = self.client(client_id=cid)
        present, _, _ = c2.connect(clean_start=False)
        self.assertFalse(present, "session outlived a 0 session expiry")

    def test_unsubscribe_reason_codes(self):
        c = self.connected()
        c.subscribe(self.t + "/a", 1)
        codes = c.unsubscribe([self.t + "/a", self.t + "/never"])
        # 3.11.3: 0x00 Success, 0x11 No subscription existed.
        self.assertEqual(codes, [0x00, raw.RC_NO_SUBSCRIPTION_EXISTED])
        self.assertEqual(c.unsubscribe([self.t + "/a"]),
                         [raw.RC_NO_SUBSCRIPTION_EXISTED])

    @timeout(45)
    def test_server_keep_alive_enforced(self):
        ska = SERVER_KEEPALIVE
        b = self.start_broker({"max_keepalive": ska})
        # The watcher pings well inside the server's limit itself: paho
        # 1.6.1 does not adopt a Server Keep Alive from CONNACK.
        watch = self.connected(broker=b, keepalive=max(1, ska // 2))
        watch.subscribe(self.t + "/will", 1)
        r = raw.RawClient(b.host, b.port)
        self.addCleanup(r.close)
        ack = r.handshake("ska-" + self.t, keepalive=60, will={
            "topic": self.t + "/will", "payload": b"ska", "qos": 1})
        # 3.2.2.3.14: the server's value replaces the client's.
        self.assertEqual(ack.props.get("server_keep_alive"), ska)
        t0 = time.monotonic()
        got = r.expect_closed(timeout=1.5 * ska + KEEPALIVE_LATENESS + 1)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, ska)
        self.assertLessEqual(elapsed, 1.5 * ska + KEEPALIVE_LATENESS)
        for p in got:
            self.assertEqual((p.type, p.rc), (raw.DISCONNECT, raw.RC_KEEP_ALIVE_TIMEOUT))
        self.assertEqual(watch.get(what="will after server keep alive").payload,
                         b"ska")

    def test_topic_alias_from_client(self):
        b = self.start_broker({"topic_alias_maximum": 10})
        sub = self.connected(broker=b)
        sub.subscribe(self.t + "/alias/#", 1)
        pub = self.client(broker=b)
        _, _, p = pub.connect()
        self.assertEqual(prop(p, "TopicAliasMaximum"), 10)
        topic = self.t + "/alias/long/topic/name"
        pub.publish(topic, b"first", 1, properties=props("PUBLISH", TopicAlias=3))
        pub.publish("", b"by-alias", 1, properties=props("PUBLISH", TopicAlias=3))
        # Re-map the alias to another topic (3.3.2.3.4).
        pub.publish(self.t + "/alias/other", b"remapped", 1,
                    properties=props("PUBLISH", TopicAlias=3))
        pub.publish("", b"by-alias-2", 1, properties=props("PUBLISH", TopicAlias=3))
        got = [(m.topic, m.payload) for m in sub.get_n(4)]
        self.assertEqual(got, [(topic, b"first"), (topic, b"by-alias"),
                               (self.t + "/alias/other", b"remapped"),
                               (self.t + "/alias/other", b"by-alias-2")])

    def test_topic_alias_out_of_range_is_rejected(self):
        b = self.start_broker({"topic_alias_maximum": 10})
        r = raw.RawClient(b.host, b.port)
        self.addCleanup(r.close)
        r.handshake()
        r.send(raw.publish(self.t + "/x", b"bad", 0,
                           props=[("topic_alias", 11)]))
        got = r.expect_closed()
        # 3.3.2.3.4: alias > Topic Alias Maximum -> DISCONNECT 0x94.
        self.assertEqual([(p.type, p.rc) for p in got],
                         [(raw.DISCONNECT, raw.RC_TOPIC_ALIAS_INVALID)])

    def test_client_maximum_packet_size_respected(self):
        small = self.client()
        small.connect(properties=props("CONNECT", MaximumPacketSize=256))
        small.subscribe(self.t + "/m", 1)
        big = self.connected()
        big.subscribe(self.t + "/m", 1)
        pub = self.connected()
        pub.publish(self.t + "/m", b"L" * 1000, 1)
        pub.publish(self.t + "/m", b"small", 1)
        # MQTT-3.1.2-24/-25: too large for that client -> discarded for it
        # only, and the client stays connected.
        self.assertEqual(small.get().payload, b"small")
        self.assertEqual([m.payload for m in big.get_n(2)],
                         [b"L" * 1000, b"small"])
        self.assertFalse(small.disconnected.is_set())

    @mosquitto_deviation(
        "Mosquitto 2.0.11 sends a third unacknowledged QoS 1 PUBLISH to a "
        "client with Receive Maximum 2 once acknowledgements start flowing "
        "(violates MQTT-3.3.4-9)")
    def test_receive_maximum_respected(self):
        # MQTT-3.3.4-9: never more unacknowledged QoS 1/2 PUBLISHes to a
        # client than its Receive Maximum. A raw subscriber withholds PUBACKs.
        r = self.raw()
        r.handshake("rm-" + self.t, props=[("receive_maximum", 2)])
        r.sub(self.t + "/rm", 1)
        pub = self.connected()
        n = 10
        for i in range(n):
            pub.publish(self.t + "/rm", b"%d" % i, 1)   # all stored at the broker
        unacked = []
        received = []
        while len(received) < n:
            while len(unacked) < 2:
                p = r.recv_type(raw.PUBLISH, timeout=5)
                unacked.append(p)
                received.append(p.payload)
            # Window full: nothing more may arrive until we acknowledge.
            try:
                extra = r.recv(timeout=0.3)
                self.fail("PUBLISH beyond Receive Maximum 2: %r" % extra)
            except TimeoutError:
                pass
            done = unacked.pop(0)
            r.send(raw.puback(done.mid))
            if len(received) == n:
                break
        self.assertEqual(received, [b"%d" % i for i in range(n)])

    def test_request_response_round_trip(self):
        responder = self.connected()
        responder.subscribe(self.t + "/svc/req", 1)
        requester = self.connected()
        resp_topic = self.t + "/svc/resp/" + requester.client_id
        requester.subscribe(resp_topic, 1)
        requester.publish(self.t + "/svc/req", b"ping", 1, properties=props(
            "PUBLISH", ResponseTopic=resp_topic, CorrelationData=b"id-42"))
        req = responder.get()
        self.assertEqual(prop(req, "ResponseTopic"), resp_topic)
        responder.publish(prop(req, "ResponseTopic"), b"pong", 1,
                          properties=props("PUBLISH", CorrelationData=prop(
                              req, "CorrelationData")))
        rsp = requester.get()
        self.assertEqual((rsp.topic, rsp.payload, prop(rsp, "CorrelationData")),
                         (resp_topic, b"pong", b"id-42"))

    def test_no_response_information_unless_requested(self):
        c = self.client()
        _, _, p = c.connect(properties=props("CONNECT", RequestResponseInformation=0))
        # MQTT-3.1.2-28.
        self.assertIsNone(prop(p, "ResponseInformation"))

    @mosquitto_deviation(
        "Mosquitto 2.0.11 never returns Response Information in CONNACK; "
        "edgeplane returns a per-client response topic prefix when asked")
    def test_response_information_when_requested(self):
        req = self.client()
        _, _, p = req.connect(properties=props(
            "CONNECT", RequestResponseInformation=1))
        info = prop(p, "ResponseInformation")
        self.assertTrue(info, "no Response Information in CONNACK")
        # It must be usable as the root of a response topic.
        resp_topic = info.rstrip("/") + "/reply"
        req.subscribe(resp_topic, 1)
        other = self.connected()
        other.publish(resp_topic, b"via-info", 1)
        self.assertEqual(req.get().payload, b"via-info")


if __name__ == "__main__":
    main()
