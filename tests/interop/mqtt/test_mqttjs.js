'use strict';
// Interop: MQTT.js (npm "mqtt", pinned in tests/interop/package.json)
// against the broker under test, over MQTT 5.0 and 3.1.1.
//
// Run through tests/interop/mqtt/test_mqttjs.py, which starts the broker
// with the shared fixture and passes its address in EP_MQTT_HOST and
// EP_MQTT_PORT. Every test uses its own topics and client ids, so all of
// them share that one broker. Clients never reconnect on their own
// (reconnectPeriod 0): a disconnect is a visible event, not something the
// library hides. Waits are on events with deadlines, never on sleeps.

const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const mqtt = require('mqtt');

const HOST = process.env.EP_MQTT_HOST;
const PORT = Number(process.env.EP_MQTT_PORT);
const TEST_TIMEOUT = 20000;
const WAIT = 5000;

if (!HOST || !PORT) {
  throw new Error('EP_MQTT_HOST/EP_MQTT_PORT not set: run test_mqttjs.py');
}

const uid = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const open = new Set();

after(async () => {
  await Promise.all([...open].map((c) => c.endAsync(true).catch(() => {})));
});

// A connected client whose received messages queue up in c.inbox; c.connack
// is its CONNACK. The message handler is in place before CONNECT goes out,
// so messages a resumed session sends right after CONNACK are not missed.
function client(version, opts = {}) {
  const c = mqtt.connect({
    host: HOST,
    port: PORT,
    protocolVersion: version,
    clientId: opts.clientId || uid('js'),
    clean: opts.clean !== undefined ? opts.clean : true,
    reconnectPeriod: 0,
    connectTimeout: WAIT,
    keepalive: 30,
    ...opts.extra,
  });
  open.add(c);
  c.inbox = [];
  c.waiters = [];
  c.on('message', (topic, payload, packet) => {
    c.inbox.push({ topic, payload, packet });
    const w = c.waiters.shift();
    if (w) w();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no CONNACK within ' + WAIT + ' ms')), WAIT);
    c.once('connect', (connack) => {
      clearTimeout(timer);
      c.connack = connack;
      resolve(c);
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// Resolves once pred() holds (checked every 10 ms), rejects after ms.
async function waitFor(pred, what, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Next message in c's inbox, or fail after ms.
function next(c, what = 'a message', ms = WAIT) {
  if (c.inbox.length) return Promise.resolve(c.inbox.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.waiters = c.waiters.filter((x) => x !== wake);
      reject(new Error(`${what}: nothing received within ${ms} ms (${c.options.clientId})`));
    }, ms);
    const wake = () => {
      clearTimeout(timer);
      resolve(c.inbox.shift());
    };
    c.waiters.push(wake);
  });
}

async function nextN(c, n, ms = WAIT) {
  const out = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    out.push(await next(c, `message ${out.length + 1} of ${n}`, Math.max(1, deadline - Date.now())));
  }
  return out;
}

async function end(c) {
  open.delete(c);
  await c.endAsync();
}

for (const [label, version] of [['MQTT 5.0', 5], ['MQTT 3.1.1', 4]]) {
  describe(`MQTT.js ${mqtt.MQTTJS_VERSION || ''} ${label}`.replace('  ', ' '), () => {
    test('QoS 0, 1 and 2 delivered at the publish QoS', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/qos');
      const sub = await client(version);
      const granted = await sub.subscribeAsync(t, { qos: 2 });
      assert.equal(granted[0].qos, 2);
      const pub = await client(version);
      for (const qos of [0, 1, 2]) {
        await pub.publishAsync(t, `q${qos}`, { qos });
        const m = await next(sub, `QoS ${qos} message`);
        assert.equal(m.topic, t);
        assert.equal(m.payload.toString(), `q${qos}`);
        assert.equal(m.packet.qos, qos);
        assert.equal(m.packet.retain, false);
      }
    });

    test('QoS 1 stream arrives complete and in order', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/order');
      const sub = await client(version);
      await sub.subscribeAsync(t, { qos: 1 });
      const pub = await client(version);
      const sent = Array.from({ length: 300 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((p) => pub.publishAsync(t, p, { qos: 1 })));
      const got = (await nextN(sub, sent.length, 10000)).map((m) => m.payload.toString());
      assert.deepEqual(got, sent);
    });

    test('retained message: set, received on subscribe, cleared', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/retain');
      const pub = await client(version);
      await pub.publishAsync(t, 'kept', { qos: 1, retain: true });
      const sub = await client(version);
      await sub.subscribeAsync(t, { qos: 1 });
      const m = await next(sub, 'retained message');
      assert.equal(m.payload.toString(), 'kept');
      assert.equal(m.packet.retain, true);
      await pub.publishAsync(t, '', { qos: 1, retain: true });
      const clearing = await next(sub, 'the clearing message');
      assert.equal(clearing.payload.length, 0);
      const late = await client(version);
      await late.subscribeAsync([t, `${t}/sentinel`], { qos: 1 });
      await pub.publishAsync(`${t}/sentinel`, 's', { qos: 1 });
      const first = await next(late, 'sentinel');
      assert.equal(first.topic, `${t}/sentinel`, 'cleared retained message was delivered');
    });

    test('shared subscription splits the stream without loss or duplicates', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/share');
      const group = crypto.randomBytes(4).toString('hex');
      const a = await client(version);
      const b = await client(version);
      await a.subscribeAsync(`$share/${group}/${t}`, { qos: 1 });
      await b.subscribeAsync(`$share/${group}/${t}`, { qos: 1 });
      const pub = await client(version);
      const n = 40;
      for (let i = 0; i < n; i++) await pub.publishAsync(t, `${i}`, { qos: 1 });
      await waitFor(() => a.inbox.length + b.inbox.length >= n, `${n} shared deliveries`)
        .catch(() => {});   // the exact check below reports what is missing
      const ga = a.inbox.map((m) => Number(m.payload.toString()));
      const gb = b.inbox.map((m) => Number(m.payload.toString()));
      assert.deepEqual([...ga, ...gb].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
      assert.ok(ga.length > 0 && gb.length > 0, `one member got everything (${ga.length}/${gb.length})`);
      for (const m of [...a.inbox, ...b.inbox]) assert.equal(m.topic, t);
    });

    test('reconnect with clean=false resumes the session and its queue', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/resume');
      const clientId = uid('jsres');
      const extra = version === 5 ? { properties: { sessionExpiryInterval: 300 } } : {};
      const first = await client(version, { clientId, clean: false, extra });
      await first.subscribeAsync(t, { qos: 1 });
      await end(first);
      assert.equal(first.connack.sessionPresent, false, 'new session reported as present');
      const pub = await client(version);
      for (const p of ['a', 'b', 'c']) await pub.publishAsync(t, p, { qos: 1 });
      const again = await client(version, { clientId, clean: false, extra });
      assert.equal(again.connack.sessionPresent, true, 'session present flag');
      const got = (await nextN(again, 3)).map((m) => m.payload.toString());
      assert.deepEqual(got, ['a', 'b', 'c']);
    });

    test('will message published when the connection is lost', { timeout: TEST_TIMEOUT }, async () => {
      const t = uid('js/will');
      const watch = await client(version);
      await watch.subscribeAsync(t, { qos: 1 });
      const w = await client(version, { extra: { will: { topic: t, payload: 'gone', qos: 1, retain: false } } });
      open.delete(w);
      w.stream.destroy();            // no DISCONNECT
      const m = await next(watch, 'will');
      assert.equal(m.payload.toString(), 'gone');
    });
  });
}

describe('MQTT.js MQTT 5.0 properties', () => {
  test('user properties, content type, correlation data round trip', { timeout: TEST_TIMEOUT }, async () => {
    const t = uid('js/props');
    const sub = await client(5);
    await sub.subscribeAsync(t, { qos: 1 });
    const pub = await client(5);
    await pub.publishAsync(t, 'payload', {
      qos: 1,
      properties: {
        userProperties: { site: 'plant-7', tag: ['t1', 't2'] },
        contentType: 'application/json',
        responseTopic: `${t}/reply`,
        correlationData: Buffer.from([0, 1, 2, 255]),
        payloadFormatIndicator: true,
        messageExpiryInterval: 600,
      },
    });
    const m = await next(sub);
    const p = m.packet.properties || {};
    assert.deepEqual({ ...p.userProperties }, { site: 'plant-7', tag: ['t1', 't2'] });
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, `${t}/reply`);
    assert.deepEqual([...p.correlationData], [0, 1, 2, 255]);
    assert.equal(p.payloadFormatIndicator, true);
    assert.ok(p.messageExpiryInterval > 590 && p.messageExpiryInterval <= 600,
      `message expiry ${p.messageExpiryInterval}`);
  });

  test('subscription identifier returned on delivery', { timeout: TEST_TIMEOUT }, async () => {
    const t = uid('js/subid');
    const sub = await client(5);
    await sub.subscribeAsync(t, { qos: 1, properties: { subscriptionIdentifier: 4242 } });
    const pub = await client(5);
    await pub.publishAsync(t, 'x', { qos: 1 });
    const m = await next(sub);
    const ids = m.packet.properties && m.packet.properties.subscriptionIdentifier;
    assert.deepEqual([].concat(ids), [4242]);
  });
});
