"""Throw-away X.509 PKI for tests, made with python3-cryptography (an
implementation other than the OpenSSL the broker uses): two CAs, a server
certificate for localhost/127.0.0.1, client certificates (good, from the
other CA, expired, or expiring soon)."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    """A throw-away PKI: two CAs, a server certificate, client certificates."""

    def __init__(self, root):
        self.root = root
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca, self.ca_key = self._ca("edgeplane test CA", now)
        self.other_ca, self.other_ca_key = self._ca("some other CA", now)
        self.write("ca.pem", self.ca)
        self.write("other-ca.pem", self.other_ca)
        self.server("server", self.ca, self.ca_key)
        self.client("client", self.ca, self.ca_key, now, now + datetime.timedelta(days=1))
        self.client("stranger", self.other_ca, self.other_ca_key, now,
                    now + datetime.timedelta(days=1))
        self.client("expired", self.ca, self.ca_key, now - datetime.timedelta(days=10),
                    now - datetime.timedelta(days=1))

    def path(self, name):
        return os.path.join(self.root, name)

    def write(self, name, cert=None, key=None):
        with open(self.path(name), "wb") as f:
            if cert is not None:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            if key is not None:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))

    def _ca(self, cn, now):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def _leaf(self, cn, issuer, issuer_key, start, end, server):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(_name(cn))
             .issuer_name(issuer.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return b.sign(issuer_key, hashes.SHA256()), key

    def server(self, name, issuer, issuer_key):
        now = datetime.datetime.now(datetime.timezone.utc)
        cert, key = self._leaf("localhost", issuer, issuer_key,
                               now - datetime.timedelta(hours=1),
                               now + datetime.timedelta(days=1), True)
        self.write(name + ".pem", cert)
        self.write(name + ".key", None, key)

    def client(self, name, issuer, issuer_key, start, end):
        cert, key = self._leaf(name, issuer, issuer_key, start, end, False)
        self.write(name + ".pem", cert)
        self.write(name + ".key", None, key)

    def client_expiring(self, name, seconds):
        """A client certificate from the good CA valid for `seconds` more."""
        now = datetime.datetime.now(datetime.timezone.utc)
        self.client(name, self.ca, self.ca_key, now - datetime.timedelta(hours=1),
                    now + datetime.timedelta(seconds=seconds))
