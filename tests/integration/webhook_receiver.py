"""webhook_receiver.py - a real HTTPS webhook endpoint for the tests.

Python's http.server over TLS with the harness's certificate. It checks
each request's X-Petrel-Signature itself (HMAC-SHA256 over t + "." + body
with the shared secret, as webhookd(8) tells applications to), records
every request, and answers by rule: fail the first N with a status, or
sleep before answering.
"""

import hashlib
import hmac
import http.server
import json
import ssl
import threading
import time


class Receiver:

    def __init__(self, cert, key, secret=b"", fail_first=0,
                 fail_status=500, delay=0.0):
        self.secret = secret
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.requests = []      # dicts: headers, body, json, verified
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if recv.delay:
                    time.sleep(recv.delay)
                r = {"headers": dict(self.headers), "body": body,
                     "time": time.time(),
                     "verified": recv.verify(self.headers, body)}
                try:
                    r["json"] = json.loads(body)
                except ValueError:
                    r["json"] = None
                with recv.lock:
                    recv.requests.append(r)
                    failing = recv.fail_first > 0
                    if failing:
                        recv.fail_first -= 1
                status = recv.fail_status if failing else 200
                out = b"nope" if failing else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = "https://localhost:%d/hooks/mail" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)

    def verify(self, headers, body):
        sig = headers.get("X-Petrel-Signature", "")
        parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
        if "t" not in parts or "v1" not in parts:
            return False
        mac = hmac.new(self.secret, parts["t"].encode() + b"." + body,
                       hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, parts["v1"]) and \
            abs(time.time() - int(parts["t"])) < 300

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def events(self, pred=lambda e: True):
        with self.lock:
            return [r for r in self.requests
                    if r["json"] is not None and pred(r["json"])]

    def wait(self, pred, timeout=30, n=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.events(pred)
            if len(got) >= n:
                return got
            time.sleep(0.1)
        return self.events(pred)
