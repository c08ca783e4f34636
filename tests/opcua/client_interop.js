#!/usr/bin/env node
// client_interop.js - edgeplane's OPC UA client (the `edgeplane opcua` CLI)
// against a node-opcua server (client_server.js) and, when the binary has
// it, against our own `edgeplane opcua-sim`.
//
//   node client_interop.js --edgeplane PATH [--workdir DIR] [--jobs N]
//                          [--only REGEX]
//
// The server is started here on a free port chosen at run time, readiness
// is awaited on its "READY" line, and it is stopped by pid at the end.
// Matrix: every security policy x mode x user token type (anonymous,
// user name, X509), each cell covering browse, read, write, call,
// a data subscription and an event subscription. Then negative cases
// (exit codes 3/4/5, rejected/ + trust workflow) and the reconnect test: a
// relay in front of the server drops the TCP connection twice in the middle
// of a subscription while the server keeps the session; the client must
// reconnect, reactivate and republish, and the counter notifications must
// show no gap.
//
// Exit status: 0 all passed, 1 a failure, 77 skipped (node-opcua missing).
// Prints "N passed, N failed" (and skipped) at the end.
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

function arg(name, def) {
    const i = process.argv.indexOf(name);
    return i < 0 ? def : process.argv[i + 1];
}

const EDGEPLANE = arg("--edgeplane", null);
const JOBS = parseInt(arg("--jobs", "3"), 10);
const ONLY = arg("--only", null);
const WORK = arg("--workdir", fs.mkdtempSync(path.join(os.tmpdir(), "ep-uacli-")));

try {
    require.resolve("node-opcua");
} catch (e) {
    console.log("SKIP: node-opcua is not installed (cd tests/opcua && npm ci)");
    console.log("0 passed, 0 failed, 1 skipped");
    process.exit(77);
}
if (!EDGEPLANE || !fs.existsSync(EDGEPLANE)) {
    console.error("usage: client_interop.js --edgeplane PATH");
    process.exit(2);
}

let passed = 0, failed = 0, skipped = 0;
const failures = [];
function ok(name) {
    passed++;
    console.log("ok   " + name);
}
function fail(name, why) {
    failed++;
    failures.push(name);
    console.log("FAIL " + name + ": " + why);
}
function skip(name, why) {
    skipped++;
    console.log("skip " + name + ": " + why);
}

// run the CLI; resolves {code, out, err}
function cli(args, opts = {}) {
    return new Promise((resolve) => {
        const p = spawn(EDGEPLANE, ["opcua", ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "", err = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (err += d));
        const t = setTimeout(() => p.kill("SIGKILL"), opts.timeout || 30000);
        p.on("close", (code, sig) => {
            clearTimeout(t);
            resolve({ code: sig ? -1 : code, out, err });
        });
    });
}

// start a server process and wait for its READY (and RELAY) lines
function startServer(cmd, args, wantRelay) {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
        let buf = "", errbuf = "";
        const info = { proc: p, url: null, relay: null, lines: [] };
        const t = setTimeout(() => reject(new Error("server not ready in 60 s: " + errbuf.slice(-2000))), 60000);
        p.stdout.on("data", (d) => {
            buf += d;
            let i;
            while ((i = buf.indexOf("\n")) >= 0) {
                const line = buf.slice(0, i);
                buf = buf.slice(i + 1);
                info.lines.push(line);
                let m;
                if ((m = /READY (\S+)/.exec(line))) info.url = m[1];
                if ((m = /RELAY (\S+)/.exec(line))) info.relay = m[1];
                if (info.url && (!wantRelay || info.relay)) {
                    clearTimeout(t);
                    resolve(info);
                }
            }
        });
        p.stderr.on("data", (d) => (errbuf = (errbuf + d).slice(-8000)));
        p.on("exit", (code) => {
            clearTimeout(t);
            reject(new Error("server exited with " + code + ": " + errbuf.slice(-2000)));
        });
    });
}

function stopServer(info) {
    if (!info || !info.proc || info.proc.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
        const t = setTimeout(() => {
            try { process.kill(info.proc.pid, "SIGKILL"); } catch (e) { /* gone */ }
        }, 5000);
        info.proc.on("exit", () => {
            clearTimeout(t);
            resolve();
        });
        process.kill(info.proc.pid, "SIGTERM");
    });
}

function parseLines(s) {
    return s.split("\n").filter((l) => l.startsWith("{") || l.startsWith("[")).map((l) => JSON.parse(l));
}

async function pool(tasks, n) {
    let i = 0;
    const workers = [];
    for (let k = 0; k < n; k++)
        workers.push((async () => {
            while (i < tasks.length) await tasks[i++]();
        })());
    await Promise.all(workers);
}

// cells run in parallel but share ns=1;s=Writable: write + read-back hold
// this lock
let writeLock = Promise.resolve();
function locked(fn) {
    const p = writeLock.then(fn, fn);
    writeLock = p.catch(() => {});
    return p;
}

// one matrix cell: browse, read, write, call, data and event subscriptions
async function cell(url, name, sec) {
    const tag = (t) => name + " " + t;
    const run = async (t, args, check) => {
        if (ONLY && !new RegExp(ONLY).test(tag(t))) return;
        const r = await cli([...args, ...sec]);
        try {
            if (r.code !== 0) throw new Error("exit " + r.code + ": " + r.err.trim().slice(0, 400));
            check(r);
            ok(tag(t));
        } catch (e) {
            fail(tag(t), e.message);
        }
    };
    await run("browse", ["browse", url, "i=85", "--depth", "1", "--json"], (r) => {
        const j = JSON.parse(r.out);
        const plant = j.children.find((c) => c.nodeId === "ns=1;s=Plant");
        if (!plant) throw new Error("Plant not found below Objects");
        if (!plant.children.find((c) => c.nodeId === "ns=1;s=Counter")) throw new Error("Counter not found");
    });
    await run("read", ["read", url, "ns=1;s=Counter", "ns=1;s=Writable", "--json"], (r) => {
        const j = JSON.parse(r.out);
        if (j.length !== 2 || j[0].status !== "Good" || j[0].type !== "UInt32") throw new Error(r.out);
    });
    const value = Math.round(Math.random() * 1e6) / 8;
    await locked(async () => {
        await run("write", ["write", url, "ns=1;s=Writable", String(value), "--json"], (r) => {
            if (JSON.parse(r.out).status !== "Good") throw new Error(r.out);
        });
        await run("read-back", ["read", url, "ns=1;s=Writable", "--json"], (r) => {
            const j = JSON.parse(r.out);
            if (j[0].value !== value) throw new Error("wrote " + value + ", read " + j[0].value);
        });
    });
    await run("call", ["call", url, "ns=1;s=Plant", "ns=1;s=Add", "Double:2.25", "Double:4", "--json"], (r) => {
        const j = JSON.parse(r.out);
        if (j.status !== "Good" || j.outputs[0] !== 6.25) throw new Error(r.out);
    });
    await run("subscribe", ["subscribe", url, "ns=1;s=Counter", "--interval", "100", "--count", "3", "--json", "--duration", "10"], (r) => {
        const v = parseLines(r.out).filter((x) => "value" in x).map((x) => x.value);
        if (v.length !== 3) throw new Error("got " + v.length + " notifications");
        for (let i = 1; i < v.length; i++) if (v[i] < v[i - 1]) throw new Error("out of order: " + v);
    });
    await run("events", ["subscribe", url, "ns=1;s=Plant", "--events", "--interval", "100", "--count", "2", "--json", "--duration", "10"], (r) => {
        const ev = parseLines(r.out).filter((x) => x.event);
        if (ev.length !== 2) throw new Error("got " + ev.length + " events");
        if (!/^tick \d+$/.test(ev[0].event.Message) || ev[0].event.Severity !== 500 || ev[0].event.SourceName !== "Plant")
            throw new Error(JSON.stringify(ev[0]));
    });
}

function secArgs(policy, mode, token, pki, userCert) {
    const a = ["--policy", policy, "--mode", mode, "--timeout", "8000"];
    if (policy !== "None" || token !== "anonymous") a.push("--pki", pki, "--auto-accept");
    if (token === "username") a.push("--user", "user1:pass1");
    if (token === "x509") a.push("--cert", userCert.cert, "--key", userCert.key);
    return a;
}

function makeUserCert(dir) {
    const cert = path.join(dir, "user1.pem"), key = path.join(dir, "user1.key");
    try {
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
            "-days", "30", "-subj", "/CN=user1", "-sha256"], { stdio: "ignore" });
        return { cert, key };
    } catch (e) {
        return null;
    }
}

async function matrix(url, label, pki, userCert) {
    const policies = ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"];
    const combos = [["None", "None"]];
    for (const p of policies) for (const m of ["Sign", "SignAndEncrypt"]) combos.push([p, m]);
    const tasks = [];
    for (const [p, m] of combos)
        for (const tok of ["anonymous", "username", "x509"]) {
            const name = `${label} ${p}/${m}/${tok}`;
            if (tok === "x509" && !userCert) {
                tasks.push(async () => skip(name, "openssl not available to make a user certificate"));
                continue;
            }
            tasks.push(() => cell(url, name, secArgs(p, m, tok, pki, userCert)));
        }
    await pool(tasks, JOBS);
}

async function negatives(url, label, pki) {
    const t = (n) => label + " " + n;
    // wrong password: security error
    let r = await cli(["read", url, "ns=1;s=Counter", "--user", "user1:wrong", "--pki", pki, "--auto-accept"]);
    r.code === 4 ? ok(t("bad password -> exit 4")) : fail(t("bad password -> exit 4"), "exit " + r.code + " " + r.err);
    // unknown node: request error
    r = await cli(["read", url, "ns=1;s=NoSuchNode"]);
    r.code === 5 ? ok(t("unknown node -> exit 5")) : fail(t("unknown node -> exit 5"), "exit " + r.code + " " + r.out + r.err);
    // nobody listening: connection error
    const dead = url.replace(/:\d+$/, ":1");
    r = await cli(["read", dead, "i=2259", "--timeout", "3000"]);
    r.code === 3 ? ok(t("connection refused -> exit 3")) : fail(t("connection refused -> exit 3"), "exit " + r.code + " " + r.err);
    // usage
    r = await cli(["read", url]);
    r.code === 2 ? ok(t("missing node -> exit 2")) : fail(t("missing node -> exit 2"), "exit " + r.code);
    // untrusted server certificate: rejected/, then trust, then ok
    const fresh = path.join(WORK, label + "-fresh-pki");
    const sec = ["--policy", "Basic256Sha256", "--mode", "SignAndEncrypt", "--pki", fresh];
    r = await cli(["read", url, "ns=1;s=Counter", ...sec]);
    const rej = path.join(fresh, "rejected");
    const files = fs.existsSync(rej) ? fs.readdirSync(rej) : [];
    if (r.code === 4 && files.length === 1) ok(t("untrusted server -> exit 4, saved to rejected/"));
    else fail(t("untrusted server -> exit 4, saved to rejected/"), "exit " + r.code + " files " + files + " " + r.err);
    if (files.length === 1) {
        r = await cli(["trust", files[0], "--pki", fresh]);
        r.code === 0 ? ok(t("trust moves it to trusted/")) : fail(t("trust moves it to trusted/"), "exit " + r.code + " " + r.err);
        r = await cli(["read", url, "ns=1;s=Counter", ...sec]);
        r.code === 0 ? ok(t("trusted server -> exit 0")) : fail(t("trusted server -> exit 0"), "exit " + r.code + " " + r.err);
    }
}

// the client must survive two dropped connections without losing a counter
// value that the server still holds
async function reconnect(server, label, sec) {
    const name = label + " reconnect + republish, no gap";
    if (ONLY && !new RegExp(ONLY).test(name)) return;
    const p = spawn(EDGEPLANE, ["opcua", "subscribe", server.relay, "ns=1;s=Counter", "--interval", "100",
        "--queue", "1000", "--json", "--duration", "7", "--stats", ...sec], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const drop = () => server.proc.stdin.write("drop\n");
    setTimeout(drop, 2000);
    setTimeout(drop, 4000);
    const code = await new Promise((resolve) => p.on("close", resolve));
    try {
        if (code !== 0) throw new Error("exit " + code + ": " + err.slice(-500));
        const v = parseLines(out).filter((x) => "value" in x).map((x) => x.value);
        const stats = JSON.parse(err.split("\n").find((l) => l.startsWith("{\"stats\"")) || "{}").stats || {};
        if (v.length < 40) throw new Error("only " + v.length + " notifications");
        for (let i = 1; i < v.length; i++) {
            // node-opcua may send the current value again after a channel
            // change (same value, new message); a gap is a lost notification
            if (v[i] > v[i - 1] + 1) throw new Error("gap between " + v[i - 1] + " and " + v[i]);
            if (v[i] < v[i - 1]) throw new Error("out of order at " + v[i - 1] + ", " + v[i]);
        }
        if (!(stats.reconnects >= 2)) throw new Error("expected 2 reconnects: " + JSON.stringify(stats));
        if (stats.lost) throw new Error("lost " + stats.lost);
        ok(name + ` (${v.length} values, ${stats.reconnects} reconnects, ${stats.republished} republished)`);
    } catch (e) {
        fail(name, e.message);
    }
}

async function main() {
    const t0 = Date.now();
    const pki = path.join(WORK, "client-pki");
    const userCert = makeUserCert(WORK);
    let node = null;
    try {
        node = await startServer(process.execPath, [path.join(__dirname, "client_server.js"),
            "--pki", path.join(WORK, "node-server-pki"), "--relay"], true);
        await matrix(node.url, "node-opcua", pki, userCert);
        await negatives(node.url, "node-opcua", pki);
        await reconnect(node, "node-opcua None", []);
        await reconnect(node, "node-opcua Basic256Sha256/SignAndEncrypt",
            ["--policy", "Basic256Sha256", "--mode", "SignAndEncrypt", "--pki", pki, "--auto-accept"]);
    } catch (e) {
        fail("node-opcua server", e.message);
    } finally {
        await stopServer(node);
    }

    // our own simulation server, when this build has it
    const help = await new Promise((resolve) => {
        const p = spawn(EDGEPLANE, ["help"], { stdio: ["ignore", "pipe", "ignore"] });
        let o = "";
        p.stdout.on("data", (d) => (o += d));
        p.on("close", () => resolve(o));
    });
    if (/opcua-sim/.test(help)) {
        let sim = null;
        try {
            sim = await startSim(pki);
            await simCell(sim.url, "opcua-sim", pki, userCert);
        } catch (e) {
            fail("opcua-sim", e.message);
        } finally {
            await stopServer(sim);
        }
    } else {
        skip("opcua-sim", "this edgeplane build has no opcua-sim command");
    }
    console.log(`${passed} passed, ${failed} failed, ${skipped} skipped  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    if (failed) console.log("failed: " + failures.join("; "));
    process.exit(failed ? 1 : 0);
}

// opcua-sim: started on a free port; readiness = its endpoint answering
async function startSim(pki) {
    const port = await new Promise((resolve) => {
        const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
    const url = "opc.tcp://127.0.0.1:" + port;
    const proc = spawn(EDGEPLANE, ["opcua-sim", "--listen", url, "--pki", path.join(WORK, "sim-pki"),
        "--auto-accept", "--user", "user1:pass1"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr.on("data", (d) => (err = (err + d).slice(-4000)));
    const info = { proc, url };
    for (let i = 0; i < 100; i++) {
        if (proc.exitCode !== null) throw new Error("opcua-sim exited: " + err);
        const r = await cli(["endpoints", url, "--json", "--timeout", "1000"]);
        if (r.code === 0) return info;
        await new Promise((r2) => setTimeout(r2, 200));
    }
    await stopServer(info);
    throw new Error("opcua-sim not ready: " + err);
}

// against our own server: the node ids of its plant are not fixed here, so
// browse to find a variable, then read/subscribe it in every security mode
async function simCell(url, label, pki, userCert) {
    let r = await cli(["browse", url, "i=85", "--depth", "3", "--json"]);
    if (r.code !== 0) return fail(label + " browse", "exit " + r.code + " " + r.err);
    ok(label + " browse");
    const vars = [];
    (function walk(n) {
        for (const c of n.children || []) {
            if (c.nodeClass === "Variable" && !c.nodeId.startsWith("i=")) vars.push(c.nodeId);
            walk(c);
        }
    })(JSON.parse(r.out));
    if (!vars.length) return fail(label + " variables", "no plant variable found below Objects");
    const policies = [["None", "None"], ["Basic256Sha256", "Sign"], ["Basic256Sha256", "SignAndEncrypt"],
        ["Aes128_Sha256_RsaOaep", "SignAndEncrypt"], ["Aes256_Sha256_RsaPss", "Sign"], ["Aes256_Sha256_RsaPss", "SignAndEncrypt"]];
    const tasks = [];
    for (const [p, m] of policies)
        for (const tok of ["anonymous", "username", "x509"]) {
            if (tok === "x509" && !userCert) continue;
            const name = `${label} ${p}/${m}/${tok}`;
            tasks.push(async () => {
                const sec = secArgs(p, m, tok, pki, userCert);
                let x = await cli(["read", url, vars[0], "--json", ...sec]);
                if (x.code !== 0) return fail(name + " read", "exit " + x.code + " " + x.err.slice(0, 300));
                ok(name + " read");
                x = await cli(["subscribe", url, vars[0], "--interval", "100", "--count", "2", "--json", "--duration", "10", ...sec]);
                if (x.code !== 0 || parseLines(x.out).filter((y) => "value" in y).length !== 2)
                    return fail(name + " subscribe", "exit " + x.code + " " + x.out.slice(0, 200) + x.err.slice(0, 300));
                ok(name + " subscribe");
            });
        }
    await pool(tasks, JOBS);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
