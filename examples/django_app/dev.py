"""Run the example shop with nothing but Python: `python dev.py`.

Without $DATABASE_URL it starts an embedded PostgreSQL (kept in .restate-pg/pgdata here), then
runs `manage.py migrate` (Django's tables and restate-pg's schema), one `manage.py restate_worker`
and the ASGI application (Django, with the ingress under /restate/) on http://127.0.0.1:8000.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    embedded = None
    if not os.environ.get("DATABASE_URL"):
        from restate_pg.store.embedded import start_embedded

        embedded = start_embedded(HERE / ".restate-pg" / "pgdata")
        os.environ["DATABASE_URL"] = embedded.url
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the children below, as on Ctrl-C
    manage = [sys.executable, "manage.py"]
    port = os.environ.get("PORT", "8000")
    children = []
    try:
        subprocess.run([*manage, "migrate"], cwd=HERE, check=True)
        children.append(subprocess.Popen([*manage, "restate_worker"], cwd=HERE))
        children.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "shopsite.asgi:application", "--port", port], cwd=HERE))
        return children[-1].wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
