"""The ASGI application hypercorn serves: `hypercorn tests.endpoints.python.app:app`.

$RESTATE_TEST_PROTOCOL (`bidi` or `request_response`) fixes the manifest's protocol mode; unset,
restate-sdk answers as it was discovered (BIDI_STREAM over HTTP/2, REQUEST_RESPONSE over
HTTP/1.1). $RESTATE_IDENTITY_KEYS (comma-separated publickeyv1_... keys) makes it verify requests.
"""

from __future__ import annotations

import os
import typing

import restate

from tests.endpoints.python.services import ALL

_protocol = os.environ.get("RESTATE_TEST_PROTOCOL") or None
_keys = [key for key in os.environ.get("RESTATE_IDENTITY_KEYS", "").split(",") if key]

app = restate.app(ALL, protocol=typing.cast(typing.Any, _protocol), identity_keys=_keys or None)
