#!/usr/bin/python3
"""anymail_receiver.py - a webhook consumer no one here wrote: django-anymail's
tracking webhook views for Mailgun, SendGrid and Postmark (Debian's
python3-django-anymail), under Django's own development server, on
127.0.0.1.

    anymail_receiver.py --port N --out FILE --mailgun-key KEY
        --basic-auth USER:PASS [--sendgrid-public-key B64]

URLs: /anymail/mailgun/tracking/, /anymail/sendgrid/tracking/,
/anymail/postmark/tracking/ (anymail's own urls.py). Mailgun requests must
carry Mailgun's signature (HMAC-SHA256 with --mailgun-key, checked by
anymail); SendGrid and Postmark requests must carry HTTP basic auth
(anymail's WEBHOOK_SECRET). anymail 9.0 does not check SendGrid's signed
event webhook, so with --sendgrid-public-key (SendGrid's "verification key",
base64 DER) this script adds that check, with python3-cryptography, as one
more validator of anymail's SendGrid view: a request without a valid
signature is refused (400) like any other validation failure.

Every AnymailTrackingEvent anymail sends on its tracking signal is appended
to FILE as one JSON line: esp, event_type, recipient, message_id, event_id,
tags, metadata, reject_reason, mta_response, description, timestamp and the
provider's event (esp_event), plus "signed" (SendGrid: the signature was
verified). The test reads FILE.
"""
import argparse
import base64
import json
import sys
import threading
import types

import django
from django.conf import settings

URLCONF = "petrel_anymail_urls"
LOCK = threading.Lock()
OPTS = None


def configure(opts):
    anymail = {
        "MAILGUN_WEBHOOK_SIGNING_KEY": opts.mailgun_key,
        "WEBHOOK_SECRET": opts.basic_auth,
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="petrel-test-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=URLCONF,
        INSTALLED_APPS=["anymail"],
        MIDDLEWARE=[],
        ANYMAIL=anymail,
        LOGGING_CONFIG=None,
        USE_TZ=True,
    )
    django.setup()


def sendgrid_signature_ok(request):
    """SendGrid's signed event webhook: ECDSA P-256 with SHA-256 over the
    timestamp header followed by the raw body; base64 DER signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    sig = request.META.get("HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE")
    ts = request.META.get("HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP")
    if not sig or not ts:
        return False
    key = serialization.load_der_public_key(
        base64.b64decode(OPTS.sendgrid_public_key))
    try:
        key.verify(base64.b64decode(sig), ts.encode() + request.body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def record(sender, event, esp_name, **kwargs):
    esp_event = event.esp_event
    if not isinstance(esp_event, (dict, list)):
        esp_event = None
    line = {
        "esp": esp_name,
        "event_type": event.event_type,
        "recipient": event.recipient,
        "message_id": event.message_id,
        "event_id": event.event_id,
        "tags": list(event.tags or []),
        "metadata": dict(event.metadata or {}),
        "reject_reason": event.reject_reason,
        "mta_response": event.mta_response,
        "description": event.description,
        "timestamp": event.timestamp.isoformat() if event.timestamp else None,
        "esp_event": esp_event,
        "signed": esp_name == "SendGrid" and bool(OPTS.sendgrid_public_key),
    }
    with LOCK:
        with open(OPTS.out, "a") as f:
            f.write(json.dumps(line) + "\n")


def make_urls():
    from django.urls import include, path
    from anymail.exceptions import AnymailWebhookValidationFailure
    from anymail.signals import tracking
    from anymail.webhooks.sendgrid import SendGridTrackingWebhookView

    tracking.connect(record, weak=False)
    patterns = []
    if OPTS.sendgrid_public_key:
        class SignedSendGridView(SendGridTrackingWebhookView):
            """anymail's view plus SendGrid's ECDSA signature check."""

            def validate_request(self, request):
                if not sendgrid_signature_ok(request):
                    raise AnymailWebhookValidationFailure(
                        "SendGrid webhook signature missing or invalid")

        # Before anymail's own urls, so that this path wins.
        patterns.append(path("anymail/sendgrid/tracking/",
                             SignedSendGridView.as_view()))
    patterns.append(path("anymail/", include("anymail.urls")))
    return patterns


def main():
    global OPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mailgun-key", required=True)
    ap.add_argument("--basic-auth", required=True)
    ap.add_argument("--sendgrid-public-key", default="")
    OPTS = ap.parse_args()
    # The URL configuration is a module of its own, made here.
    urls = types.ModuleType(URLCONF)
    sys.modules[URLCONF] = urls
    configure(OPTS)
    urls.urlpatterns = make_urls()

    from django.core.servers.basehttp import WSGIServer, run
    from django.core.wsgi import get_wsgi_application

    WSGIServer.request_queue_size = 64
    print("anymail_receiver: listening on 127.0.0.1:%d" % OPTS.port,
          flush=True)
    run("127.0.0.1", OPTS.port, get_wsgi_application(), ipv6=False,
        threading=True)


if __name__ == "__main__":
    main()
