// opcua_sim.js - starts `edgeplane opcua-sim` for the node-opcua client
// tests against our server (server_*.js): on a free port chosen by the
// server itself, ready once it prints its "opcua-sim ready: <url>" line.
"use strict";
const { spawn } = require("child_process");
const readline = require("readline");

// startSim runs `bin opcua-sim --listen opc.tcp://127.0.0.1:0 ...args`
// (stderr passed through) and returns { child, url, port } once it is
// ready; rejects when it exits first or is not ready in 20 s. The caller
// stops the child.
async function startSim(bin, args) {
    const child = spawn(bin, ["opcua-sim", "--listen", "opc.tcp://127.0.0.1:0", ...args],
        { stdio: ["ignore", "pipe", "inherit"] });
    const rl = readline.createInterface({ input: child.stdout });
    const url = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("opcua-sim not ready in 20 s")), 20000);
        child.on("exit", (c) => reject(new Error(`opcua-sim exited with ${c}`)));
        rl.on("line", (line) => {
            const m = /^opcua-sim ready: (\S+)/.exec(line);
            if (m) { clearTimeout(t); resolve(m[1]); }
        });
    });
    return { child, url, port: parseInt(/:(\d+)$/.exec(url)[1], 10) };
}

module.exports = { startSim };
