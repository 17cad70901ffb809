"""dsn_parse.py - reads an RFC 3464 delivery report with two parsers.

parse_python uses Python's email package; parse_second an independent
parser (see its docstring). Both return the same shape, so a test can
check that they agree:

    {"content_type", "report_type", "reporting_mta", "envelope_id",
     "arrival_date", "text" (the human part), "returned" (part 3 as text),
     "returned_type", "recipients": [{"final_recipient", "action",
     "status", "diagnostic_code", "remote_mta", "original_recipient",
     "last_attempt_date", "will_retry_until", "class"}]}
"""

import email
import email.policy

FIELDS = {
    "final-recipient": "final_recipient",
    "original-recipient": "original_recipient",
    "action": "action",
    "status": "status",
    "diagnostic-code": "diagnostic_code",
    "remote-mta": "remote_mta",
    "last-attempt-date": "last_attempt_date",
    "will-retry-until": "will_retry_until",
    "x-petrel-bounce-class": "class",
}


def _unfold(v):
    return " ".join(str(v).split())


def _recipient(fields):
    """fields: (name, value) pairs of one per-recipient group."""
    out = {}
    for name, value in fields:
        key = FIELDS.get(name.lower())
        if key is not None:
            out[key] = _unfold(value)
    return out


def parse_python(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out = {"content_type": msg.get_content_type(),
           "report_type": msg.get_param("report-type"),
           "recipients": [], "text": "", "returned": "",
           "returned_type": None, "reporting_mta": None,
           "envelope_id": None, "arrival_date": None}
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    if len(parts) >= 1:
        out["text"] = parts[0].get_content()
    if len(parts) >= 2:
        ds = parts[1]
        assert ds.get_content_type() == "message/delivery-status", \
            ds.get_content_type()
        groups = ds.get_payload()
        per_msg = groups[0]
        out["reporting_mta"] = _unfold(per_msg.get("Reporting-MTA"))
        if per_msg.get("Original-Envelope-Id") is not None:
            out["envelope_id"] = _unfold(per_msg.get("Original-Envelope-Id"))
        if per_msg.get("Arrival-Date") is not None:
            out["arrival_date"] = _unfold(per_msg.get("Arrival-Date"))
        for g in groups[1:]:
            out["recipients"].append(_recipient(g.items()))
    if len(parts) >= 3:
        ret = parts[2]
        out["returned_type"] = ret.get_content_type()
        if ret.get_content_type() == "message/rfc822":
            out["returned"] = ret.get_payload()[0].as_string()
        else:
            out["returned"] = ret.get_payload(decode=True).decode(
                "utf-8", "replace")
    return out


def parse_second(data):
    raise NotImplementedError("second parser")
