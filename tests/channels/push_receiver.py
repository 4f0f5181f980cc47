"""A browser's side of Web Push, for the tests: it makes subscriptions (a P-256 key pair and
an auth secret each), takes pushes at their endpoints, checks the VAPID JWT (RFC 8292) and
decrypts the payload with the `http_ece` library (RFC 8188/8291), and lists what it got.

    push_receiver.py serve PORT        serve until killed
    push_receiver.py pywebpush URL     send one message with pywebpush to the receiver at URL
                                       and check it decrypts the same way (so the receiver
                                       is right too)

GET /subscribe?name=N&answers=503,201 makes subscription N whose endpoint answers the
given statuses in turn (the last one from then on); GET /received lists every push.
"""

import base64
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


LOCK = threading.Lock()
SUBSCRIPTIONS = {}
RECEIVED = []


def check_vapid(authorization, origin):
    """The claims of a valid `vapid t=…, k=…` header for `origin`; raises otherwise."""
    scheme, _, params = authorization.partition(" ")
    if scheme != "vapid":
        raise ValueError(f"not the vapid scheme: {authorization!r}")
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = fields["t"], fields["k"]
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64d(header_b64))
    if header.get("alg") != "ES256":
        raise ValueError(f"alg {header.get('alg')!r}")
    raw = b64d(signature_b64)
    if len(raw) != 64:
        raise ValueError("an ES256 signature is r and s, 32 bytes each")
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad VAPID signature")
    claims = json.loads(b64d(claims_b64))
    if claims.get("aud") != origin:
        raise ValueError(f"aud {claims.get('aud')!r} is not {origin!r}")
    now = time.time()
    if not now < claims["exp"] <= now + 24 * 3600:
        raise ValueError(f"exp {claims['exp']} is not within 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError(f"sub {claims.get('sub')!r}")
    claims["k"] = key
    return claims


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/received":
            with LOCK:
                return self.answer(200, RECEIVED)
        if url.path == "/subscribe":
            query = parse_qs(url.query)
            name = query["name"][0]
            answers = [int(a) for a in query.get("answers", ["201"])[0].split(",")]
            key = ec.generate_private_key(ec.SECP256R1())
            auth = os.urandom(16)
            with LOCK:
                SUBSCRIPTIONS[name] = {"key": key, "auth": auth, "answers": answers}
            point = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            host = self.headers["Host"]
            return self.answer(200, {
                "endpoint": f"http://{host}/push/{name}",
                "keys": {"p256dh": b64e(point), "auth": b64e(auth)},
            })
        self.answer(404, {"error": "no such path"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        name = urlparse(self.path).path.rsplit("/", 1)[-1]
        with LOCK:
            sub = SUBSCRIPTIONS.get(name)
            if sub is None:
                return self.answer(404, {"error": "no such subscription"})
            status = sub["answers"].pop(0) if len(sub["answers"]) > 1 else sub["answers"][0]
        entry = {
            "name": name,
            "status": status,
            "ttl": self.headers.get("TTL"),
            "urgency": self.headers.get("Urgency"),
            "encoding": self.headers.get("Content-Encoding"),
        }
        if 200 <= status < 300:
            try:
                entry["vapid"] = check_vapid(self.headers.get("Authorization", ""), f"http://{self.headers['Host']}")
                plain = http_ece.decrypt(body, private_key=sub["key"], auth_secret=sub["auth"], version="aes128gcm")
                entry["payload"] = json.loads(plain)
            except Exception as e:  # recorded for the test to show
                entry["error"] = f"{type(e).__name__}: {e}"
                status = 400
        with LOCK:
            RECEIVED.append(entry)
        self.answer(status, {} if status < 300 else {"error": "as asked"})


def serve(port):
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def check_with_pywebpush(base):
    from py_vapid import Vapid
    from pywebpush import webpush

    subscription = json.load(urllib.request.urlopen(f"{base}/subscribe?name=pywebpush"))
    vapid = Vapid()
    vapid.generate_keys()
    message = {"kind": "check", "title": "From pywebpush", "body": "é ✓"}
    webpush(
        subscription,
        data=json.dumps(message),
        vapid_private_key=vapid,
        vapid_claims={"sub": "mailto:check@example.com"},
        content_encoding="aes128gcm",
    )
    got = [r for r in json.load(urllib.request.urlopen(f"{base}/received")) if r["name"] == "pywebpush"]
    assert len(got) == 1, got
    assert got[0].get("payload") == message, got
    assert got[0]["encoding"] == "aes128gcm", got
    print("pywebpush's message decrypted and its VAPID token verified:", got[0]["vapid"]["aud"])


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "pywebpush":
        check_with_pywebpush(sys.argv[2].rstrip("/"))
    else:
        sys.exit(__doc__)
