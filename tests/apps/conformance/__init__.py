"""A test app written from the contract of Restate's conformance services (the e2e suite's
`sdk-tests`: /work/shared/reference/restate.md section 6.2), with the names and payloads that
contract fixes, so that tests/test_conformance.py can run its scenarios (section 6.3) here.
Written from the contract alone, with restate_pg's API as a restate-sdk user would.
"""

from __future__ import annotations

import restate_pg as restate
from tests.apps.conformance import interpreter, services

app = restate.app([*services.SERVICES, interpreter.interpreter])
