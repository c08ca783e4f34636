#!/usr/bin/env python3
"""auth_passwd_cli.py - `edgeplane passwd` end to end.

Runs the real binary on a temporary directory and checks the password file
it writes with an independent implementation (Python's hashlib/hmac):
file mode 0600, PBKDF2-SHA512 and SCRAM-SHA-256 entries, password change in
place with comments kept, --delete, --iterations, and the refusals (empty
password, bad user name, unknown user, too few iterations, no terminal).
Prints "N passed, N failed"; exits 1 on any failure.
"""
import argparse
import base64
import hashlib
import hmac
import os
import stat
import subprocess
import sys
import tempfile

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def run(ep, args, stdin=None):
    p = subprocess.run([ep, "passwd"] + args, input=stdin, capture_output=True, text=True,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       start_new_session=True)  # no controlling terminal
    return p.returncode, p.stderr


def entries(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                user, rest = line.split(":", 1)
                out[user] = rest.split("$")[1:]
    return out


def pbkdf2_ok(fields, password):
    scheme, it, salt, h = fields
    return scheme == "pbkdf2-sha512" and hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(it), 64) == base64.b64decode(h)


def scram_ok(fields, password):
    scheme, it, salt, stored, server = fields
    sp = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(it), 32)
    ck = hmac.new(sp, b"Client Key", "sha256").digest()
    return (scheme == "scram-sha-256" and hashlib.sha256(ck).digest() == base64.b64decode(stored)
            and hmac.new(sp, b"Server Key", "sha256").digest() == base64.b64decode(server))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeplane", required=True)
    ep = ap.parse_args().edgeplane
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "users.pw")
        rc, err = run(ep, ["--password-stdin", f, "alice"], "s3cret\n")
        check("add pbkdf2 user", rc == 0, err)
        check("file mode 0600", stat.S_IMODE(os.stat(f).st_mode) == 0o600)
        e = entries(f)
        check("default iterations 210000", e["alice"][1] == "210000", e["alice"])
        check("16-byte salt", len(base64.b64decode(e["alice"][2])) == 16)
        check("pbkdf2 hash verifies", pbkdf2_ok(e["alice"], "s3cret"))

        rc, err = run(ep, ["--password-stdin", "--scram", f, "dev1"], "pw with spaces\r\n")
        check("add scram user", rc == 0, err)
        e = entries(f)
        check("scram default iterations 4096", e["dev1"][1] == "4096", e["dev1"])
        check("scram keys verify", scram_ok(e["dev1"], "pw with spaces"))

        with open(f) as fh:
            text = fh.read()
        with open(f, "w") as fh:
            fh.write("# managed by hand\n" + text)
        os.chmod(f, 0o644)
        rc, err = run(ep, ["--password-stdin", "--iterations", "5000", f, "alice"], "new\n")
        check("change password", rc == 0, err)
        e = entries(f)
        check("new password and iterations", pbkdf2_ok(e["alice"], "new") and
              e["alice"][1] == "5000")
        with open(f) as fh:
            lines = fh.read().splitlines()
        check("comment and order kept", lines[0] == "# managed by hand" and
              lines[1].startswith("alice:") and lines[2].startswith("dev1:"), lines)
        check("mode back to 0600", stat.S_IMODE(os.stat(f).st_mode) == 0o600)

        rc, err = run(ep, ["--delete", f, "alice"])
        check("delete", rc == 0 and "alice" not in entries(f), err)
        rc, err = run(ep, [f, "--delete", "alice"])
        check("delete unknown user exits 1", rc == 1 and "no user 'alice'" in err, err)

        before = open(f).read()
        for name, args, stdin, want in [
            ("empty password", ["--password-stdin", f, "bob"], "\n", 2),
            ("no password on stdin", ["--password-stdin", f, "bob"], "", 2),
            ("user with ':'", ["--password-stdin", f, "a:b"], "x\n", 2),
            ("too few iterations", ["--password-stdin", "--iterations", "999", f, "bob"],
             "x\n", 2),
            ("too few SCRAM iterations",
             ["--password-stdin", "--scram", "--iterations", "4095", f, "bob"], "x\n", 2),
            ("no terminal", [f, "bob"], None, 2),
            ("missing user", [f], None, 2),
            ("unknown option", ["--bogus", f, "bob"], None, 2),
        ]:
            rc, err = run(ep, args, stdin)
            check(f"refused: {name}", rc == want, f"rc={rc} {err}")
        check("refusals leave the file alone", open(f).read() == before)

        with open(f, "w") as fh:
            fh.write("broken\n")
        rc, err = run(ep, ["--password-stdin", f, "bob"], "x\n")
        check("broken file not rewritten", rc == 1 and open(f).read() == "broken\n" and
              "users.pw:1:1: expected USER:$SCHEME$..." in err, err)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
