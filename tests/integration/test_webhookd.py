"""test_webhookd.py - webhookd end to end: real daemons, a real HTTPS
receiver (webhook_receiver.py) that verifies signatures itself.

delivered, bounced (550 5.1.1 with its class) and deferred-then-delivered
each reach the endpoint as petrel events with a valid signature and a
stable id; an endpoint answering 500 three times gets the event on the
fourth try; kill -9 of every process while events are pending loses none;
a slow endpoint does not delay another's events; an endpoint down for
longer than events.max_age leaves dead letters that relayctl events list
shows and relayctl events replay delivers; relayctl log search --to finds
a message's whole history, webhooks included; the store keeps no join
('M' record) for a message once each of its recipients' final events is
in, so it does not grow with every message ever relayed; a credential's
own endpoint gets at most events.credential_max_concurrent requests at
once, each cut off after events.credential_timeout; a secret_file
emptied before a reload is refused with its file, line and key, and the
running configuration stays; a sendgrid endpoint whose key cannot sign
gets no request, a warning, and retries until a new key and a reload let
the event through; an endpoint whose certificate its ca_file does not
trust gets nothing, a warning naming it and curl's reason, and the event
once the right ca_file is reloaded; with two endpoints dead-lettered,
relayctl events replay --failed --endpoint URL (or ID --endpoint URL)
replays that endpoint's dead letters only.
"""

import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import PetrelCase, Suite, certificate, make_message, unique
from webhook_receiver import Receiver

SECRET = b"s3cret-for-tests"


class WebhookCase(PetrelCase):

    receivers = ({},)           # kwargs of each Receiver
    endpoint_extra = ({},)      # extra keys of each webhooks[] entry
    events_extra = {}           # extra keys of events:

    def serve_cert(self):
        """(cert, key) the receivers serve: the harness's, which every
        endpoint's ca_file trusts."""
        return certificate()

    def setUp(self):
        cert, key = certificate()
        self.recv = []
        for kw in self.receivers:
            r = Receiver(*self.serve_cert(), secret=SECRET, **kw).start()
            self.addCleanup(r.stop)
            self.recv.append(r)
        d = self.recv_dir = __import__("tempfile").mkdtemp(
            prefix="petrel-wh-")
        os.chmod(d, 0o755)
        secret = os.path.join(d, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET + b"\n")
        os.chmod(secret, 0o644)
        hooks = []
        for r, extra in zip(self.recv, self.endpoint_extra):
            e = {"url": r.url, "secret_file": secret, "ca_file": cert}
            e.update(extra)
            hooks.append(e)
        self.overrides = dict(self.overrides or {})
        self.overrides["webhooks"] = hooks
        self.overrides["events"] = {"min_backoff": "1s",
                                    "max_backoff": "4s"}
        self.overrides["events"].update(self.events_extra)
        super().setUp()

    def wait_log(self, regex, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(regex, self.suite.log()):
                return
            time.sleep(0.1)
        self.fail("no log line %r\n%s" % (regex, self.suite.log_tail()))

    def check_event(self, r, kind, qid, rcpt=None):
        e = r["json"]
        self.assertTrue(r["verified"], "signature does not verify: %r" % r)
        self.assertEqual(e["event"], kind)
        self.assertEqual(e["queue_id"], qid)
        self.assertRegex(e["id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r["headers"].get("X-Petrel-Event-Id"), e["id"])
        if rcpt is not None:
            self.assertEqual(e["recipient"], rcpt)
        return e


class OutcomesTest(WebhookCase):

    def test_delivered_and_accepted(self):
        tok = unique("whd")
        rcpt = "ok-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "delivered")
        self.assertTrue(got, self.suite.log_tail())
        e = self.check_event(got[0], "delivered", qid, rcpt)
        self.assertEqual(e["user"], self.user)     # joined from accepted
        self.assertEqual(e["sender"], "app@example.com")
        self.assertEqual(e["metadata"], {})
        self.assertEqual(e["tags"], [])
        acc = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "accepted")
        self.assertTrue(acc)
        self.check_event(acc[0], "accepted", qid)
        self.assertIn("message_id", acc[0]["json"])
        self.assertEqual(e["message_id"], acc[0]["json"]["message_id"])
        self.wait_log(r"webhookd\[\d+\]: %s: event=%s to=https://"
                      r"localhost:\d+/hooks/mail status=sent \(HTTP 200\)"
                      % (qid, e["id"]))

    def test_bounced_with_class(self):
        tok = unique("whb")
        bad = "gone-%s@example.org" % tok
        self.capture.add_rcpt_rule(
            "550 5.1.1 The email account that you tried to reach does "
            "not exist", address=bad)
        qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
        got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "bounced")
        self.assertTrue(got, self.suite.log_tail())
        e = self.check_event(got[0], "bounced", qid, bad)
        self.assertEqual(e["status"], "5.1.1")
        self.assertEqual(e["class"], "bad-mailbox")
        self.assertEqual(e["severity"], "hard")
        self.assertIn("550", e["reply"])

    def test_deferred_then_delivered(self):
        tok = unique("whdd")
        rcpt = "later-%s@example.org" % tok
        self.capture.add_rcpt_rule("451 4.2.0 try again later",
                                   address=rcpt, times=1)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "delivered", timeout=40)
        self.assertTrue(got, self.suite.log_tail())
        d = self.recv[0].events(lambda e: e.get("queue_id") == qid and
                                e["event"] == "deferred")
        self.assertTrue(d)
        e = self.check_event(d[0], "deferred", qid, rcpt)
        self.assertEqual(e["severity"], "soft")
        self.assertIn("next_attempt", e)
        self.assertEqual(e["attempts"], 1)
        self.wait_log(r"%s: event=%s .*status=sent" % (qid, got[0]["json"]["id"]))

        # The delivery log tells the whole story, newest first, from the
        # real daemons: webhookd indexed what qmgr and smtpd wrote.
        # (The webhook's outcome is indexed just after its log line.)
        deadline = time.time() + 10
        while True:
            r = self.suite.relayctl("-j", "log", "search", "--to",
                                    rcpt.upper())
            evs = [json.loads(x) for x in r.stdout.decode().splitlines()]
            if evs and evs[0].get("webhooks") or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([x["event"] for x in evs],
                         ["delivered", "deferred", "accepted"], evs)
        self.assertTrue(all(x["queue_id"] == qid for x in evs))
        self.assertIn("451 4.2.0", evs[1]["reply"])
        self.assertEqual(evs[0]["sasl_username"], self.user)
        self.assertIn(("sent", 200),
                      [(w["outcome"], w["http_status"])
                       for w in evs[0].get("webhooks", [])])
        show = self.suite.relayctl("log", "show", qid).stdout.decode()
        self.assertIn(qid, show)
        self.assertRegex(show, r"deferred .*\n +reply: 451 4\.2\.0")
        self.assertRegex(show, r"delivered .*\n +reply: 250 ")
        # Endpoints as logged: the URL, never a key or userinfo.
        self.assertRegex(show, r"webhook sent \(HTTP 200\) "
                         r"https://localhost:\d+/hooks/mail at ")


class RetryTest(WebhookCase):

    receivers = ({"fail_first": 3},)
    endpoint_extra = ({"events": "delivered"},)

    def test_fourth_try_after_three_500s(self):
        tok = unique("whr")
        rcpt = "r-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        # Only delivered events go there: this one takes the 500s.
        self.wait_arrival(tok)
        ok = None
        deadline = time.time() + 40
        while time.time() < deadline:
            reqs = self.recv[0].events(lambda e: e.get("queue_id") == qid
                                       and e["event"] == "delivered")
            if len(reqs) >= 4:
                ok = reqs
                break
            time.sleep(0.2)
        self.assertIsNotNone(ok, "%r\n%s" % (self.recv[0].requests,
                                             self.suite.log_tail()))
        self.assertEqual(len(self.recv[0].requests), 4)
        self.assertEqual(len({r["json"]["id"] for r in ok}), 1)
        # Backoff: 1 s, then 2 s, then 4 s (events.min_backoff 1s).
        gaps = [b["time"] - a["time"] for a, b in zip(ok, ok[1:])]
        self.assertGreater(gaps[1], gaps[0] * 1.5, gaps)
        self.assertTrue(all(r["verified"] for r in ok))
        self.wait_log(r"status=deferred \(HTTP 500")


class SlowEndpointTest(WebhookCase):

    receivers = ({"delay": 8.0}, {})
    endpoint_extra = ({"max_concurrent": 1, "timeout": "20s"}, {})

    def test_slow_endpoint_does_not_delay_another(self):
        t0 = time.time()
        qids = []
        for i in range(3):
            tok = unique("whs%d" % i)
            qids.append(self.submit(make_message(tok),
                                    rcpts=["s%d@example.org" % i]))
        for q in qids:
            got = self.recv[1].wait(lambda e: e.get("queue_id") == q and
                                    e["event"] == "delivered", timeout=15)
            self.assertTrue(got, self.suite.log_tail())
        # The slow one has answered at most one request by now.
        self.assertLess(time.time() - t0, 15)
        self.assertLessEqual(len(self.recv[0].requests), 2)


class DeadLetterTest(WebhookCase):

    receivers = ({"fail_first": 1000000},)
    endpoint_extra = ({"events": "delivered"},)
    events_extra = {"max_age": "3s"}

    def events(self, *args, check=True):
        return self.suite.relayctl("events", *args, check=check)

    def listing(self, *args):
        out = self.events("list", "-j", *args).stdout.decode()
        return [json.loads(x) for x in out.splitlines()]

    def test_dead_letters_listed_and_replayed(self):
        tok = unique("whdl")
        rcpts = ["dl%d-%s@example.org" % (i, tok) for i in range(2)]
        qid = self.submit(make_message(tok), rcpts=rcpts)
        for r in rcpts:
            self.wait_log(r"%s: event=[0-9a-f]{32} .*status=dead" % qid,
                          timeout=30)
        deadline = time.time() + 20
        dead = []
        while time.time() < deadline and len(dead) < 2:
            dead = [d for d in self.listing("--failed")
                    if d["queue_id"] == qid and d["state"] == "dead"]
            time.sleep(0.2)
        self.assertEqual(sorted(d["recipient"] for d in dead), rcpts,
                         self.suite.log_tail())
        for d in dead:
            self.assertEqual(d["event"], "delivered")
            self.assertEqual(d["endpoint"], self.recv[0].url)
            self.assertEqual(d["http_status"], 500)
            self.assertGreaterEqual(d["tries"], 2)
            self.assertRegex(d["id"], r"^[0-9a-f]{32}$")
        txt = self.events("list").stdout.decode()
        self.assertRegex(txt, r"%s delivered +%s to=%s dead +https://"
                         % (dead[0]["id"], qid, dead[0]["recipient"]))

        one = json.loads(self.events("show", dead[0]["id"], "-j").stdout)
        self.assertEqual(one["id"], dead[0]["id"])
        self.assertEqual(one["event"]["event"], "delivered")
        self.assertEqual(one["event"]["recipient"], dead[0]["recipient"])
        self.assertEqual([x["state"] for x in one["deliveries"]], ["dead"])

        # Unknown ids and bad words are refused, nothing changes.
        r = self.events("replay", "0" * 32, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not in the webhook store", r.stderr)
        self.assertEqual(self.events("replay", check=False).returncode, 2)
        self.assertEqual(self.events("show", "xyz", check=False)
                         .returncode, 2)

        # The endpoint is back: replay one by id, the rest by --failed.
        self.recv[0].fail_first = 0
        before = len(self.recv[0].requests)
        out = self.events("replay", dead[0]["id"]).stdout.decode()
        self.assertEqual(out.strip(), "1 delivery replayed")
        deadline = time.time() + 15
        while time.time() < deadline and not [
                r for r in self.recv[0].requests[before:]
                if r["json"]["id"] == dead[0]["id"]]:
            time.sleep(0.1)
        self.assertEqual([r["json"]["id"]
                          for r in self.recv[0].requests[before:]],
                         [dead[0]["id"]], self.suite.log_tail())
        out = self.suite.relayctl("-j", "events", "replay", "--failed",
                                  "--endpoint", self.recv[0].url)
        out = out.stdout.decode()
        self.assertEqual(json.loads(out), {"replayed": 1})
        deadline = time.time() + 15
        while time.time() < deadline:
            sent = [d for d in self.listing() if d["queue_id"] == qid and
                    d["state"] == "sent"]
            if len(sent) == 2:
                break
            time.sleep(0.2)
        self.assertEqual(len(sent), 2, self.suite.log_tail())
        ids = {r["json"]["id"] for r in self.recv[0].requests[before:]}
        self.assertEqual(ids, {d["id"] for d in dead})
        self.assertEqual([d for d in self.listing("--failed")
                          if d["queue_id"] == qid], [])
        self.assertTrue(all(r["verified"]
                            for r in self.recv[0].requests[before:]))


class CrashTest(WebhookCase):

    receivers = ({"fail_first": 1000000},)

    def test_kill9_while_pending_loses_nothing(self):
        tok = unique("whk")
        rcpts = ["k%d-%s@example.org" % (i, tok) for i in range(3)]
        qid = self.submit(make_message(tok), rcpts=rcpts)
        for r in rcpts:
            self.suite.wait_delivery(qid, r, "sent")
        # Every event has been tried (and failed) at least once.
        self.assertTrue(self.recv[0].wait(
            lambda e: e.get("queue_id") == qid and
            e["event"] == "delivered", n=3, timeout=20))
        self.suite.kill9()
        self.recv[0].fail_first = 0
        seen = {r["json"]["id"] for r in self.recv[0].requests}
        self.suite.start()
        got = self.recv[0].wait(
            lambda e: e.get("queue_id") == qid and
            e["event"] == "delivered", n=6, timeout=30)
        ok = [r for r in got if r["headers"] is not None]
        ids = {r["json"]["id"] for r in ok}
        self.assertEqual(len(ids), 3, self.suite.log_tail())
        self.assertTrue(ids <= seen)    # the same ids after the crash
        self.wait_log(r"%s: event=[0-9a-f]{32} .*status=sent" % qid)


class SecretReloadTest(WebhookCase):

    def test_reload_refuses_empty_secret(self):
        """A secret_file emptied (or left with white space only) before a
        SIGHUP: master names file, line and key and keeps the running
        configuration; webhookd goes on signing with what it read."""
        secret = os.path.join(self.recv_dir, "secret")
        conf = self.suite.conf_path
        with open(conf) as f:
            line = [i + 1 for i, t in enumerate(f.read().splitlines())
                    if "secret_file:" in t][0]
        # webhookd reads its secrets as it starts: it must have read them
        # before the file is emptied (master may still be starting it).
        self.wait_log(r"webhookd\[\d+\]: \d+ endpoint\(s\)")
        pids = set(self.suite.pids())
        with open(secret, "w") as f:
            f.write(" \n")
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        self.wait_log(r"reload: %s:%d: webhooks\[0\]\.secret_file: %s: "
                      r"empty \(or only white space\); keeping the running "
                      r"configuration" % (re.escape(conf), line,
                                          re.escape(secret)))
        self.assertEqual(set(self.suite.pids()), pids,
                         "daemons were replaced after an invalid reload")
        tok = unique("whhup")
        qid = self.submit(make_message(tok), rcpts=["hup@example.org"])
        got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "delivered", timeout=20)
        self.assertTrue(got, self.suite.log_tail())
        self.assertTrue(got[0]["verified"])


def store_keys(queue_dir):
    """The keys of webhookd's store (lib/whstore), read with mdb_dump."""
    out = subprocess.run(
        ["mdb_dump", "-p", "-s", "webhook",
         os.path.join(queue_dir, "webhook")],
        check=True, capture_output=True, text=True).stdout.splitlines()
    body = out[out.index("HEADER=END") + 1:out.index("DATA=END")]
    return [k[1:] for k in body[0::2]]


class JoinPruneTest(WebhookCase):

    def test_joins_go_with_the_last_final_event(self):
        tok = unique("whj")
        bad = "gone-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=bad)
        rcpts = ["j%d-%s@example.org" % (i, tok) for i in range(2)] + [bad]
        qids = [self.submit(make_message(tok, to=rcpts[0]), rcpts=rcpts)]
        for i in range(8):
            r = "s%d-%s@example.org" % (i, tok)
            qids.append(self.submit(make_message(tok, to=r), rcpts=[r]))
        final = ("delivered", "bounced")
        got = self.recv[0].wait(lambda e: e.get("queue_id") in qids and
                                e["event"] in final, n=11, timeout=30)
        self.assertEqual(len(got), 11, self.suite.log_tail())
        # Every recipient's event was joined, the last one's included.
        for r in got:
            self.assertEqual(r["json"]["user"], self.user)
        deadline = time.time() + 10
        while True:
            joins = [k for k in store_keys(self.suite.queue_dir)
                     if k[:1] in ("M", "N") and k[1:] in qids]
            if not joins or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(joins, [])
        # The events themselves are still there for retries and replays.
        keys = store_keys(self.suite.queue_dir)
        self.assertGreaterEqual(len([k for k in keys if k[:1] == "E"]), 11)


class SlowPlainReceiver:
    """A plain HTTP endpoint that takes `delay` seconds per request and
    counts how many it has in flight at once (the most, and in all)."""

    def __init__(self, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.inflight = self.most = self.done = 0
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length",
                                                     "0")))
                with recv.lock:
                    recv.inflight += 1
                    recv.most = max(recv.most, recv.inflight)
                time.sleep(recv.delay)
                with recv.lock:
                    recv.inflight -= 1
                    recv.done += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass        # the client gave up (its timeout)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hooks" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class CredentialLimitsTest(WebhookCase):
    """events.credential_max_concurrent and events.credential_timeout
    apply to an endpoint set with relayctl user set --webhook."""

    events_extra = {"credential_max_concurrent": 1,
                    "credential_timeout": "2s"}

    def cred_endpoint(self, delay):
        r = SlowPlainReceiver(delay)
        self.addCleanup(r.stop)
        self.ensure_user()
        self.suite.relayctl("user", "set", self.user, "--webhook", r.url)
        return r

    def test_one_request_at_a_time(self):
        r = self.cred_endpoint(0.5)
        tok = unique("whc")
        for i in range(4):
            rc = "c%d-%s@example.org" % (i, tok)
            self.submit(make_message(tok, to=rc), rcpts=[rc])
        deadline = time.time() + 30
        while r.done < 8 and time.time() < deadline:
            time.sleep(0.1)
        self.assertGreaterEqual(r.done, 8, self.suite.log_tail())
        # The default (4) would have had the four accepted events at once.
        self.assertEqual(r.most, 1)

    def test_request_cut_off_after_the_timeout(self):
        # 4 s is within the default 10 s (it would be sent) but over 2 s.
        r = self.cred_endpoint(4.0)
        tok = unique("wht")
        qid = self.submit(make_message(tok), rcpts=["t-%s@example.org"
                                                    % tok])
        self.wait_log(r"%s: event=[0-9a-f]{32} to=%s status=deferred"
                      % (qid, re.escape(r.url)), timeout=8)


# An EC private key that OpenSSL loads (so webhookd takes it as a
# sendgrid_key_file) but cannot sign with: its curve is over a 20-bit
# field, and ECDSA refuses a group order under 64 bits. It stands in for
# any failure to sign (check_webhookd_esp.c has the same key).
UNSIGNABLE_KEY = b"""-----BEGIN EC PRIVATE KEY-----
MEgCAQEEAwAwOaAyMDACAQEwDgYHKoZIzj0BAQIDD0JDMAoEAwFzkAQDCNEXBAcEAAAECimyAgMP
PoMCAQGhCgMIAAQIXNILMhI=
-----END EC PRIVATE KEY-----
"""


def sendgrid_verifies(public_b64, headers, body):
    """Whether a request carries SendGrid's ECDSA signature by the key
    whose public half (base64 DER, as relayctl webhook keygen prints it)
    is public_b64."""
    import base64
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    sig = headers.get("X-Twilio-Email-Event-Webhook-Signature")
    ts = headers.get("X-Twilio-Email-Event-Webhook-Timestamp")
    if not sig or not ts:
        return False
    pub = serialization.load_der_public_key(base64.b64decode(public_b64))
    try:
        pub.verify(base64.b64decode(sig), ts.encode() + body,
                   ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


class SigningFailureTest(WebhookCase):
    """A sendgrid-format endpoint whose key cannot sign: the request is not
    made, the failure is logged as a warning and the event is retried with
    the backoff (never counted as sent, as an event without a shape is);
    once the key is replaced and master reloaded, it is delivered."""

    def setUp(self):
        self.keydir = __import__("tempfile").mkdtemp(prefix="petrel-whk-")
        os.chmod(self.keydir, 0o755)
        self.addCleanup(__import__("shutil").rmtree, self.keydir, True)
        self.sg_key = os.path.join(self.keydir, "sendgrid.pem")
        with open(self.sg_key, "wb") as f:
            f.write(UNSIGNABLE_KEY)
        os.chmod(self.sg_key, 0o644)
        self.endpoint_extra = ({"format": "sendgrid", "events": "delivered",
                                "sendgrid_key_file": self.sg_key},)
        super().setUp()

    def test_retried_until_it_can_sign(self):
        tok = unique("whsig")
        rcpt = "sig-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        self.wait_arrival(tok)
        url = re.escape(self.recv[0].url)
        self.wait_log(r"webhookd\[\d+\]: warning: webhook %s: event "
                      r"([0-9a-f]{32}) of %s not sent: ECDSA signature "
                      r"failed" % (url, qid))
        eid = re.search(r"webhook %s: event ([0-9a-f]{32}) of %s not sent"
                        % (url, qid), self.suite.log()).group(1)
        # Each try is a failed one, retried after the backoff (1 s, 2 s).
        tries = r"%s: event=%s to=%s status=deferred \(not sent: ECDSA " \
            r"signature failed" % (qid, eid, url)
        deadline = time.time() + 20
        while time.time() < deadline and \
                len(re.findall(tries, self.suite.log())) < 2:
            time.sleep(0.2)
        self.assertGreaterEqual(len(re.findall(tries, self.suite.log())), 2,
                                self.suite.log_tail())
        self.assertNotRegex(self.suite.log(),
                            r"event=%s .*status=sent" % eid)
        self.assertEqual(self.recv[0].requests, [])
        lst = [json.loads(x) for x in self.suite.relayctl(
            "events", "list", "-j").stdout.decode().splitlines()]
        mine = [d for d in lst if d["id"] == eid]
        self.assertEqual(len(mine), 1, lst)
        self.assertEqual(mine[0]["state"], "pending")
        self.assertGreaterEqual(mine[0]["tries"], 2)

        # The operator replaces the key and reloads: the event arrives,
        # signed with the new key, under the same id.
        fresh = os.path.join(self.keydir, "fresh.pem")
        r = self.suite.relayctl("webhook", "keygen", fresh)
        public = r.stdout.decode().strip()
        os.chmod(fresh, 0o644)
        os.replace(fresh, self.sg_key)
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        got = self.recv[0].wait(lambda e: isinstance(e, list) and
                                e[0].get("sg_event_id") == eid, timeout=30)
        self.assertTrue(got, self.suite.log_tail())
        ev = got[0]["json"][0]
        self.assertEqual(ev["event"], "delivered")
        self.assertEqual(ev["email"], rcpt)
        self.assertTrue(sendgrid_verifies(public, got[0]["headers"],
                                          got[0]["body"]))
        self.wait_log(r"%s: event=%s to=%s status=sent \(HTTP 200\)"
                      % (qid, eid, url))


def other_certificate(tmpdir):
    """A self-signed certificate for localhost that the harness's
    certificate (every endpoint's ca_file here) does not vouch for."""
    cert = os.path.join(tmpdir, "other-cert.pem")
    key = os.path.join(tmpdir, "other-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", cert],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=60)
    os.chmod(cert, 0o644)
    return cert, key


class UntrustedCertificateTest(WebhookCase):
    """An HTTPS endpoint whose certificate its ca_file does not trust: a
    warning names the endpoint and curl's reason, nothing is posted, the
    event stays pending; with the right ca_file (a reload) it arrives."""

    def serve_cert(self):
        if not hasattr(self, "other"):
            d = __import__("tempfile").mkdtemp(prefix="petrel-whc-")
            os.chmod(d, 0o755)
            self.addCleanup(__import__("shutil").rmtree, d, True)
            self.other = other_certificate(d)
        return self.other

    def test_warning_then_delivered_with_the_right_ca(self):
        tok = unique("whtls")
        rcpt = "tls-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        self.wait_arrival(tok)
        url = re.escape(self.recv[0].url)
        self.wait_log(r"webhookd\[\d+\]: warning: webhook %s: TLS "
                      r"certificate did not verify with ca_file %s "
                      r"\(SSL certificate problem: [^)]+\); events are "
                      r"kept and retried"
                      % (url, re.escape(self.suite.cert)))
        self.wait_log(r"%s: event=[0-9a-f]{32} to=%s status=deferred "
                      r"\(SSL certificate problem" % (qid, url))
        self.assertEqual(self.recv[0].requests, [])

        # The operator names the CA that signed it and reloads.
        self.suite.config["webhooks"][0]["ca_file"] = self.other[0]
        self.suite.write_config()
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        for kind in ("accepted", "delivered"):
            got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                    e["event"] == kind, timeout=30)
            self.assertTrue(got, "%s: %s" % (kind, self.suite.log_tail()))
            self.assertTrue(got[0]["verified"])
            self.assertEqual(got[0]["json"]["queue_id"], qid)


class ReplayOneEndpointTest(WebhookCase):
    """Two endpoints, both down past max_age: relayctl events replay
    --failed --endpoint URL (and ID --endpoint URL) replays that
    endpoint's dead letters only."""

    receivers = ({"fail_first": 1000000}, {"fail_first": 1000000})
    endpoint_extra = ({"events": "delivered"}, {"events": "delivered"})
    events_extra = {"max_age": "3s"}

    def dead(self):
        out = self.suite.relayctl("events", "list", "-j", "--failed")
        return [json.loads(x) for x in out.stdout.decode().splitlines()]

    def test_replay_one_endpoint(self):
        tok = unique("whro")
        rcpts = ["ro%d-%s@example.org" % (i, tok) for i in range(2)]
        qid = self.submit(make_message(tok), rcpts=rcpts)
        deadline = time.time() + 40
        dead = []
        while time.time() < deadline and len(dead) < 4:
            dead = [d for d in self.dead()
                    if d["queue_id"] == qid and d["state"] == "dead"]
            time.sleep(0.3)
        self.assertEqual(len(dead), 4, self.suite.log_tail())
        a, b = self.recv
        self.assertEqual(sorted(d["endpoint"] for d in dead),
                         sorted([a.url, a.url, b.url, b.url]))
        a.fail_first = b.fail_first = 0
        na, nb = len(a.requests), len(b.requests)

        out = self.suite.relayctl("-j", "events", "replay", "--failed",
                                  "--endpoint", b.url).stdout.decode()
        self.assertEqual(json.loads(out), {"replayed": 2})
        got = b.wait(lambda e: e.get("queue_id") == qid, n=nb + 2,
                     timeout=20)
        self.assertEqual(len(got), nb + 2, self.suite.log_tail())
        self.assertEqual({r["json"]["recipient"] for r in got[nb:]},
                         set(rcpts))
        # a's are still dead letters, and nothing went to a.
        time.sleep(2)
        self.assertEqual(len(a.requests), na)
        left = [d for d in self.dead() if d["queue_id"] == qid]
        self.assertEqual(sorted((d["endpoint"], d["state"]) for d in left),
                         [(a.url, "dead"), (a.url, "dead")])

        # By id: one event, one endpoint.
        one = left[0]
        out = self.suite.relayctl("events", "replay", one["id"],
                                  "--endpoint", a.url).stdout.decode()
        self.assertEqual(out.strip(), "1 delivery replayed")
        got = a.wait(lambda e: e.get("queue_id") == qid, n=na + 1,
                     timeout=20)
        self.assertEqual([r["json"]["id"] for r in got[na:]], [one["id"]])
        left = [d for d in self.dead() if d["queue_id"] == qid]
        self.assertEqual([d["id"] for d in left],
                         [d["id"] for d in dead if d["endpoint"] == a.url
                          and d["id"] != one["id"]])


if __name__ == "__main__":
    unittest.main()
