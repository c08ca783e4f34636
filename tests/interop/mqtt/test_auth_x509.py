#!/usr/bin/python3
"""X.509 authorization attributes (x509_attributes of an authentication
chain) through the real broker over mutual TLS.

PKI: the test CA (trusted by the listener), an intermediate CA under it
("CN = edgeplane site CA, O = Site 1"), and client certificates: dev-inter
(issued by the intermediate: gets the intermediate's attributes),
dev-special (issued by the intermediate but with a mapping of its own: the
walk from the leaf stops there), dev-root (issued by the root, no mapping:
no attributes). Clients send leaf + intermediate. A rule publishing to
bldg/{principal.attributes.building}/# is allowed or denied accordingly
(v5 PUBACK 0x87 when denied); {principal.username} is the CN.
"""
import datetime
import os
import shutil
import ssl
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "lib"))
sys.path.insert(0, HERE)
from auth_raw import Raw  # noqa: E402
from child_proc import LoggedProcess  # noqa: E402

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pki import Pki
    PEERS = None
except ImportError as e:
    PEERS = str(e)

BINARY = os.environ.get("EP_BINARY")

RULES = """rules:
  - principals:
      attributes:
        - {building: b1}
        - {building: b9}
    brokerResources:
      - method: Connect
      - method: Publish
        topics: ["bldg/{principal.attributes.building}/#", "who/{principal.username}"]
  - principals:
      usernames: [dev-root]
    brokerResources:
      - method: Connect
"""


def pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def issue(subject, issuer_cert, issuer_key, ca):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))
    return cert, key


def name(cn, org=None):
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@unittest.skipIf(PEERS is not None or not BINARY, "peers missing: %s" % PEERS)
class X509AttributeTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ep-auth-x509-")
        cls.pki = Pki(cls.dir)
        inter, inter_key = issue(name("edgeplane site CA", "Site 1"), cls.pki.ca,
                                 cls.pki.ca_key, True)
        for cn, issuer, ikey in (("dev-inter", inter, inter_key),
                                 ("dev-special", inter, inter_key),
                                 ("dev-root", cls.pki.ca, cls.pki.ca_key)):
            cert, key = issue(name(cn), issuer, ikey, False)
            with open(cls.pki.path(cn + ".pem"), "wb") as f:
                f.write(pem(cert) + (pem(inter) if issuer is inter else b""))
            with open(cls.pki.path(cn + ".key"), "wb") as f:
                f.write(pem(key))
        cls.start_broker()

    @classmethod
    def start_broker(cls):
        p = cls.pki.path
        rules = p("rules.yaml")
        with open(rules, "w") as f:
            f.write(RULES)
        conf = p("broker.yaml")
        with open(conf, "w") as f:
            # written as the reference shows subjects (most specific first)
            # and, for the leaf, in certificate order: both must match
            f.write(f"""authentication:
  - name: certs
    methods: [x509]
    x509_attributes:
      - name: site1
        subject: "CN = edgeplane site CA, O = Site 1"
        attributes: [building=b1, site=one]
      - name: special
        subject: "cn=dev-special"
        attributes: [building=b9]
authorization:
  - name: rules
    rules_file: {rules}
listeners:
  - address: 127.0.0.1:0
    authentication: certs
    authorization: rules
    tls: {{cert: {p('server.pem')}, key: {p('server.key')}, client_ca: {p('ca.pem')},
           client_certs: required}}
""")
        cls.broker = LoggedProcess()
        cls.broker.spawn([BINARY, "broker", "--config", conf, "--log-level", "debug"],
                         p("broker.log"))
        cls.port = cls.broker.wait_ports(1)[0]

    @classmethod
    def output(cls):
        return cls.broker.output()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self, cn, v5=True):
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.pem"))
        ctx.load_cert_chain(self.pki.path(cn + ".pem"), self.pki.path(cn + ".key"))
        r = Raw(self.port, v5=v5, cid=cn, tls=ctx)
        self.addCleanup(r.close)
        self.assertEqual(r.connack, 0, "CONNACK for " + cn)
        return r

    def test_intermediate_subject_gives_attributes(self):
        r = self.client("dev-inter")
        self.assertLess(r.publish("bldg/b1/temp", 1), 0x80)
        self.assertEqual(r.publish("bldg/b9/temp", 2), 0x87)
        self.assertLess(r.publish("who/dev-inter", 3), 0x80)  # CN is the user name
        self.assertEqual(r.publish("who/someone-else", 4), 0x87)

    def test_leaf_match_stops_the_walk(self):
        r = self.client("dev-special")
        self.assertLess(r.publish("bldg/b9/temp", 1), 0x80)
        self.assertEqual(r.publish("bldg/b1/temp", 2), 0x87)

    def test_no_mapping_no_attributes(self):
        r = self.client("dev-root")
        self.assertEqual(r.publish("bldg/b1/temp", 1), 0x87)
        self.assertEqual(r.publish("who/dev-root", 2), 0x87)

    def test_mqtt311(self):
        r = self.client("dev-inter", v5=False)
        self.assertEqual(r.publish("bldg/b1/temp", 1), 0)
        self.assertIn("attributes of mapping site1", self.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
