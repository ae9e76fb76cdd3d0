"""Schemathesis hooks for orders-api (loaded through SCHEMATHESIS_HOOKS by scripts/tests/clients.rs).

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


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
