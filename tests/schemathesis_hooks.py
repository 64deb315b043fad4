"""Schemathesis hooks for the stateful pass (`tests/schemathesis-stateful.toml`): its credentials.

A partner has at most one integration, so `POST /partner-integrations` with one partner's token
creates once and answers 409 after. Each partner create here carries the next token from
SEYAHA_PARTNER_TOKENS (a file of JWTs for partners without an integration, one per line, minted
by `tests/tests/it/schemathesis.rs`), so every scenario can start with a real create and follow
its links; when the file runs out the last token repeats (409s, still valid answers). Every
other JWT operation runs as the admin (ADMIN_TOKEN). The webhooks get their secret from the
create's answer through the document's links, so nothing is set for them here.

Schemathesis drops these hooks when its configuration names any credential, which is why the
stateful configuration has no `[auth]` section.
"""

import os
import threading

import schemathesis

PARTNER_CREATE = ("POST", "/api/v1/partner-integrations")

_admin_token = os.environ["ADMIN_TOKEN"]
with open(os.environ["SEYAHA_PARTNER_TOKENS"], encoding="ascii") as _file:
    _partner_tokens = _file.read().split()
_lock = threading.Lock()
_next = 0


def _fresh_partner_token():
    global _next
    with _lock:
        token = _partner_tokens[min(_next, len(_partner_tokens) - 1)]
        _next += 1
    return token


# No caching: a fresh partner per create.
@schemathesis.auth(refresh_interval=None).skip_for(path_regex=r"/(sync/trigger|availability/notify|octo/events|openapi\.json)$")
class Credentials:
    def get(self, case, context):
        if (case.operation.method.upper(), case.operation.path) == PARTNER_CREATE:
            return _fresh_partner_token()
        return _admin_token

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
