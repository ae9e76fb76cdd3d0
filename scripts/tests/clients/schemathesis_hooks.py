"""Schemathesis hooks for orders-api (loaded through SCHEMATHESIS_HOOKS by scripts/tests/clients.rs).

A product name may not hold invisible characters. The OpenAPI pattern states the rule for the
Basic Multilingual Plane only (no escape for a character beyond U+FFFF means the same in
ECMA-262 and Python), so a generated name can hold one beyond it that the pattern allows and the
API refuses (the Unicode tags, U+E0000-U+E007F, say; or a variation selector as the only
character): each is replaced with an "x" before the call, the divergence the document's text
states.

An Idempotency-Key names one create attempt: the same key with another body is refused (422,
as the IETF draft "The Idempotency-Key HTTP Header Field" asks) and with the same body replays
the first answer, even for an order deleted since. Both are documented and correct, but a
fuzzer that draws keys from a small space reuses them across unrelated requests. Each valid key
is therefore made unique, as a real client's would be; invalid keys are left as generated, so
the negative cases still test the documented format.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")
# service_kit::visible_text's hidden and zero-width characters beyond U+FFFF (service-kit/src/visible_text.rs).
BEYOND_THE_PATTERN = re.compile("[\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("product"), str):
        body["product"] = BEYOND_THE_PATTERN.sub("x", body["product"])
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
