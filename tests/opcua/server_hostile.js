#!/usr/bin/env node
// Hostile input against `edgeplane opcua-sim` while a healthy node-opcua
// client keeps reading in parallel: every case must be refused with the
// right status code and the healthy session must never see an error.
//
//   garbage header            ERR Bad_TcpMessageTypeInvalid
//   chunk above the buffer    ERR Bad_TcpMessageTooLarge
//   message above 16 MiB      ServiceFault Bad_RequestTooLarge, channel open
//   variants nested 200 deep  ServiceFault Bad_EncodingLimitsExceeded
//   wrong sequence number     ERR Bad_SequenceNumberInvalid
//   tampered signature        ERR Bad_SecurityChecksFailed (Sign mode,
//                             one byte flipped by a relay)
//   expired client cert       ERR Bad_CertificateTimeInvalid
//   wrong-URI client cert     CreateSession Bad_CertificateUriInvalid
//
// usage: node server_hostile.js --edgeplane PATH
"use strict";

const { execFileSync } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const {
    OPCUAClient,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
} = require("node-opcua");
const { startSim } = require("./opcua_sim");

const results = [];
function report(ok, name, detail) {
    results.push(ok);
    console.log(`${ok ? "ok" : "not ok"} ${results.length} - ${name}${detail ? " # " + detail : ""}`);
}
function arg(name, def) {
    const i = process.argv.indexOf(name);
    return i < 0 ? def : process.argv[i + 1];
}
const hex = (v) => "0x" + (v >>> 0).toString(16).padStart(8, "0");

// ---- raw opc.tcp helpers (security None) ----

function u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; }
function str(s) { if (s === null) return u32(0xffffffff); const b = Buffer.from(s); return Buffer.concat([u32(b.length), b]); }
function frame(type, chunk, body) {
    const h = Buffer.from(type + chunk, "latin1");
    return Buffer.concat([h, u32(8 + body.length), body]);
}
function hello(url, recv = 65535, send = 65535) {
    return frame("HEL", "F", Buffer.concat([u32(0), u32(recv), u32(send), u32(0), u32(0), str(url)]));
}
function requestHeader(handle) {
    return Buffer.concat([Buffer.from([0, 0]), Buffer.alloc(8), u32(handle), u32(0), u32(0xffffffff), u32(10000),
        Buffer.from([0, 0, 0])]);
}
function opnNone(seq) {
    const body = Buffer.concat([Buffer.from([1, 0, 0xbe, 0x01]) /* i=446 */, requestHeader(1), u32(0), u32(0), u32(1),
        u32(0xffffffff), u32(600000)]);
    return frame("OPN", "F", Buffer.concat([u32(0), str("http://opcfoundation.org/UA/SecurityPolicy#None"),
        u32(0xffffffff), u32(0xffffffff), u32(seq), u32(1), body]));
}
function msg(chan, token, seq, reqId, body, chunk = "F") {
    return frame("MSG", chunk, Buffer.concat([u32(chan), u32(token), u32(seq), u32(reqId), body]));
}

class Raw {
    constructor(port) {
        this.buf = Buffer.alloc(0);
        this.waiters = [];
        this.closed = false;
        this.sock = net.connect(port, "127.0.0.1");
        this.sock.on("data", (d) => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
        this.sock.on("close", () => { this.closed = true; this.pump(); });
        this.sock.on("error", () => { /* reset by the server: reported as close */ });
    }
    pump() {
        while (this.waiters.length) {
            if (this.buf.length >= 8 && this.buf.length >= this.buf.readUInt32LE(4)) {
                const n = this.buf.readUInt32LE(4);
                const m = this.buf.subarray(0, n);
                this.buf = this.buf.subarray(n);
                this.waiters.shift().resolve(m);
            } else if (this.closed) {
                this.waiters.shift().resolve(null);
            } else break;
        }
    }
    next(ms = 5000) {
        return new Promise((resolve, reject) => {
            const w = { resolve: (m) => { clearTimeout(t); resolve(m); } };
            const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); reject(new Error("no reply")); }, ms);
            this.waiters.push(w);
            this.pump();
        });
    }
    write(b) { return new Promise((res) => this.sock.write(b, res)); }
    end() { this.sock.destroy(); }
    async open(url) {
        await this.write(hello(url));
        const ack = await this.next();
        if (!ack || ack.toString("latin1", 0, 3) !== "ACK") throw new Error("no ACK");
        await this.write(opnNone(1));
        const opn = await this.next();
        if (!opn || opn.toString("latin1", 0, 3) !== "OPN") throw new Error("no OPN response");
        // header 8, chan 4, policy uri, cert -1, thumb -1, seq 4, req 4, nodeid 4, response header ...
        let p = 12;
        p += 4 + opn.readUInt32LE(p);
        p += 8; // cert, thumbprint (null)
        p += 8; // sequence header
        p += 4; // encoding id
        p += 8 + 4 + 4 + 1 + 4 + 3; // timestamp, handle, result, diag (empty mask), string table (-1), ext obj
        p += 4; // server protocol version
        this.chan = opn.readUInt32LE(p);
        this.token = opn.readUInt32LE(p + 4);
        this.seq = 2;
    }
}

function errStatus(m) {
    return m && m.toString("latin1", 0, 3) === "ERR" ? m.readUInt32LE(8) : null;
}
function faultStatus(m) {
    if (!m || m.toString("latin1", 0, 3) !== "MSG") return null;
    // 24 header bytes, 4-byte encoding id, timestamp 8, handle 4, result 4
    return m.readUInt32LE(24 + 4 + 12);
}

// ---- certificates ----

function opensslEnv() {
    const env = { ...process.env };
    if (!env.OPENSSL_CONF || env.OPENSSL_CONF === "undefined") delete env.OPENSSL_CONF;
    return env;
}

function makeCert(dir, name, uri, start, end) {
    const d = path.join(dir, name);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, "index.txt"), "");
    fs.writeFileSync(path.join(d, "serial"), "1000\n");
    fs.writeFileSync(path.join(d, "ca.cnf"), `[ca]\ndefault_ca=c\n[c]\ndir=${d}\ndatabase=${d}/index.txt\n` +
        `new_certs_dir=${d}\nserial=${d}/serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n`);
    const env = opensslEnv();
    const key = path.join(d, "key.pem"), csr = path.join(d, "req.csr"), cert = path.join(d, "cert.pem");
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", `/CN=${name}`, "-addext", `subjectAltName=URI:${uri}`,
        "-addext", "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyCertSign",
        "-addext", "extendedKeyUsage=clientAuth,serverAuth"], { stdio: ["ignore", "ignore", "pipe"], env });
    execFileSync("openssl", ["ca", "-batch", "-config", path.join(d, "ca.cnf"), "-selfsign", "-keyfile", key,
        "-in", csr, "-out", cert, "-startdate", start, "-enddate", end, "-notext"],
        { stdio: ["ignore", "ignore", "pipe"], env });
    return { cert, key };
}

// ---- the server ----

function startSimFor(bin, pki) {
    return startSim(bin, ["--pki", pki, "--auto-accept", "--update-ms", "100", "--log-level", "error"]);
}

async function healthyClient(url, certMgr) {
    const client = OPCUAClient.create({ endpointMustExist: false, clientCertificateManager: certMgr,
        connectionStrategy: { maxRetry: 0 }, securityMode: MessageSecurityMode.SignAndEncrypt,
        securityPolicy: SecurityPolicy.Basic256Sha256 });
    await client.connect(url);
    const session = await client.createSession();
    const state = { reads: 0, errors: [], stop: false };
    state.done = (async () => {
        while (!state.stop) {
            try {
                const dv = await session.read({ nodeId: "ns=2;s=Plant.Oven1.Temperature", attributeId: AttributeIds.Value });
                if (dv.statusCode.value !== 0) state.errors.push(dv.statusCode.toString());
                state.reads++;
            } catch (e) { state.errors.push(e.message); }
            await new Promise((r) => setTimeout(r, 50));
        }
        await session.close();
        await client.disconnect();
    })();
    return state;
}

async function expectErr(name, port, url, fn, want) {
    const r = new Raw(port);
    try {
        const got = await fn(r);
        report(got === want, name, `got ${got === null ? "nothing" : hex(got)}, want ${hex(want)}`);
    } catch (e) {
        report(false, name, e.message);
    } finally {
        r.end();
    }
}

// relay that flips one byte in the client's 4th message (a signed MSG)
function tamperRelay(port) {
    return new Promise((resolve) => {
        const state = { errStatus: null };
        const srv = net.createServer((c) => {
            const up = net.connect(port, "127.0.0.1");
            let n = 0, secure = false, acc = Buffer.alloc(0), down = Buffer.alloc(0);
            c.on("data", (d) => {
                acc = Buffer.concat([acc, d]);
                while (acc.length >= 8 && acc.length >= acc.readUInt32LE(4)) {
                    const len = acc.readUInt32LE(4);
                    const m = Buffer.from(acc.subarray(0, len));
                    acc = acc.subarray(len);
                    const type = m.toString("latin1", 0, 3);
                    if (type === "OPN") secure = !m.toString("latin1", 16, 16 + m.readUInt32LE(12)).endsWith("#None");
                    if (secure && type === "MSG" && ++n === 2) m[len - 5] ^= 0x5a;
                    up.write(m);
                }
            });
            up.on("data", (d) => {
                down = Buffer.concat([down, d]);
                while (down.length >= 8 && down.length >= down.readUInt32LE(4)) {
                    const len = down.readUInt32LE(4);
                    const m = down.subarray(0, len);
                    if (m.toString("latin1", 0, 3) === "ERR") state.errStatus = m.readUInt32LE(8);
                    down = down.subarray(len);
                }
                c.write(d);
            });
            up.on("close", () => c.destroy());
            c.on("close", () => up.destroy());
            up.on("error", () => c.destroy());
            c.on("error", () => up.destroy());
        });
        srv.listen(0, "127.0.0.1", () => resolve({ srv, state, port: srv.address().port }));
    });
}

async function clientAttempt(url, opts, certMgr, claimUri) {
    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 },
        clientCertificateManager: certMgr, ...opts });
    // node-opcua always claims its certificate's URI; a hostile client may not
    if (claimUri) client._getApplicationUri = () => claimUri;
    try {
        await client.connect(url);
        const s = await client.createSession();
        await s.read({ nodeId: "i=2258", attributeId: AttributeIds.Value });
        await s.close();
        return "connected";
    } catch (e) {
        return e.message;
    } finally {
        try { await client.disconnect(); } catch (_) { /* gone */ }
    }
}

async function main() {
    const bin = arg("--edgeplane");
    if (!bin) { console.error("usage: server_hostile.js --edgeplane PATH"); process.exit(2); }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ep-uahostile-"));
    const certMgr = new OPCUACertificateManager({ rootFolder: path.join(tmp, "client-pki"), automaticallyAcceptUnknownCertificate: true });
    await certMgr.initialize();
    const { child, url, port } = await startSimFor(bin, path.join(tmp, "server-pki"));
    let healthy;
    try {
        healthy = await healthyClient(url, certMgr);

        await expectErr("garbage header -> Bad_TcpMessageTypeInvalid", port, url, async (r) => {
            await r.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            return errStatus(await r.next());
        }, 0x807e0000);

        await expectErr("chunk above the receive buffer -> Bad_TcpMessageTooLarge", port, url, async (r) => {
            const h = hello(url);
            h.writeUInt32LE(10 * 1024 * 1024, 4);
            await r.write(h.subarray(0, 8));
            return errStatus(await r.next());
        }, 0x80800000);

        await expectErr("message above MaxMessageSize -> ServiceFault Bad_RequestTooLarge", port, url, async (r) => {
            await r.open(url);
            const piece = Buffer.alloc(65000, 0x41);
            for (let i = 0; i < 270; i++) await r.write(msg(r.chan, r.token, r.seq++, 7, piece, "C"));
            await r.write(msg(r.chan, r.token, r.seq++, 7, piece, "F"));
            const m = await r.next(10000);
            return m && m.readUInt32LE(20) === 7 ? faultStatus(m) : null;
        }, 0x80b80000);

        await expectErr("variants nested 200 deep -> ServiceFault Bad_EncodingLimitsExceeded", port, url, async (r) => {
            await r.open(url);
            const parts = [Buffer.from([1, 0, 0xa1, 0x02]) /* WriteRequest i=673 */, requestHeader(9), u32(1),
                Buffer.from([1, 2, 0, 0]) /* ns=2;i=0 */, u32(13), u32(0xffffffff), Buffer.from([1])];
            for (let i = 0; i < 200; i++) parts.push(Buffer.from([0x80 | 24]), u32(1));
            parts.push(Buffer.from([0]));
            await r.write(msg(r.chan, r.token, r.seq++, 9, Buffer.concat(parts)));
            return faultStatus(await r.next());
        }, 0x80080000);

        await expectErr("wrong sequence number -> Bad_SequenceNumberInvalid", port, url, async (r) => {
            await r.open(url);
            const body = Buffer.concat([Buffer.from([1, 0, 0xac, 0x01]) /* GetEndpoints i=428 */, requestHeader(3),
                str(url), u32(0), u32(0)]);
            await r.write(msg(r.chan, r.token, r.seq + 5, 3, body));
            return errStatus(await r.next());
        }, 0x80880000);

        {
            const relay = await tamperRelay(port);
            const res = await clientAttempt(`opc.tcp://127.0.0.1:${relay.port}`, {
                securityMode: MessageSecurityMode.Sign, securityPolicy: SecurityPolicy.Basic256Sha256,
            }, certMgr);
            relay.srv.close();
            report(relay.state.errStatus === 0x80130000, "tampered signature -> Bad_SecurityChecksFailed",
                `server sent ${relay.state.errStatus === null ? "no ERR" : hex(relay.state.errStatus)}; client: ${res}`);
        }

        {
            const { cert, key } = makeCert(tmp, "expired-client", "urn:edgeplane:test:expired",
                "20200101000000Z", "20200201000000Z");
            const seen = { st: null };
            const relay = await new Promise((resolve) => {
                const srv = net.createServer((c) => {
                    const up = net.connect(port, "127.0.0.1");
                    c.pipe(up);
                    up.on("data", (d) => {
                        const i = d.indexOf("ERRF");
                        if (i >= 0 && d.length >= i + 12) seen.st = d.readUInt32LE(i + 8);
                        c.write(d);
                    });
                    up.on("close", () => c.destroy());
                    c.on("error", () => up.destroy());
                    up.on("error", () => c.destroy());
                });
                srv.listen(0, "127.0.0.1", () => resolve(srv));
            });
            const res = await clientAttempt(`opc.tcp://127.0.0.1:${relay.address().port}`, {
                securityMode: MessageSecurityMode.SignAndEncrypt, securityPolicy: SecurityPolicy.Basic256Sha256,
                certificateFile: cert, privateKeyFile: key, applicationUri: "urn:edgeplane:test:expired",
            }, certMgr);
            relay.close();
            report(seen.st === 0x80140000, "expired client certificate -> Bad_CertificateTimeInvalid",
                `server sent ${seen.st === null ? "no ERR" : hex(seen.st)}; client: ${res}`);
        }

        {
            const res = await clientAttempt(url, {
                securityMode: MessageSecurityMode.SignAndEncrypt, securityPolicy: SecurityPolicy.Aes256_Sha256_RsaPss,
            }, certMgr, "urn:edgeplane:test:not-the-certificate-uri");
            report(/BadCertificateUriInvalid/.test(res), "wrong-URI client certificate -> Bad_CertificateUriInvalid", res);
        }

        // the healthy session must go on being served after all that
        const base = healthy.reads;
        const t0 = Date.now();
        while (healthy.reads < base + 10 && Date.now() - t0 < 10000)
            await new Promise((r) => setTimeout(r, 100));
        healthy.stop = true;
        await healthy.done;
        report(healthy.errors.length === 0 && healthy.reads > 10, "healthy client served throughout",
            `${healthy.reads} reads, errors: ${healthy.errors.slice(0, 3).join("; ")}`);
        report(child.exitCode === null, "server still running");
    } catch (e) {
        report(false, "hostile suite", e.message);
    } finally {
        if (healthy) healthy.stop = true;
        child.kill("SIGTERM");
        await new Promise((res) => { if (child.exitCode !== null) res(); else child.on("exit", res); });
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    const failed = results.filter((r) => !r).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
