"""Run inside a function's freshly built virtualenv: load the build context as the image would
(the template's index.py, which imports function.handler), call it through the template's
Flask app with one request, and print what came back as JSON.

    <venv>/bin/python call_handler.py <context dir> <METHOD> <path> [body]

Backing services are not needed: the environment points at closed ports, and the requests
chosen by the caller are answered before any of them is used.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    context, method, path = sys.argv[1:4]
    body = sys.argv[4].encode() if len(sys.argv) > 4 else b""
    os.chdir(context)
    sys.path.insert(0, context)
    import index  # the template's runtime, exactly what `python index.py` starts

    index.start()
    client = index.app.test_client()
    ready = client.get("/_/ready")
    response = client.open(path, method=method, data=body)
    print(
        json.dumps(
            {
                "handler_module": index.handler.__file__,
                "ready_status": ready.status_code,
                "status": response.status_code,
                "body": response.get_data(as_text=True)[:500],
            }
        ),
        flush=True,
    )
    # Some handlers start background threads when built (snapshot refresh, outbox relay) that
    # keep retrying the closed ports; the answer is printed, so leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
