"""`make export-status`: the log-level export's hours, exported, failed and pending.

Asks the export function (GET /function/export/status, with the admin token) through the
platform's gateway and prints one line per failed hour, a summary of the exported ones, the
pending hours as ranges, and the lag per type. `--json` prints the answer as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta

import requests

from . import profile as profiles
from . import secrets


def _ranges(hours: list[str]) -> list[str]:
    """'2026-12-02T10:00:00Z'... as 'first .. last (n)' runs of consecutive hours."""
    runs: list[list[datetime]] = []
    for text in sorted(set(hours)):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if runs and moment - runs[-1][-1] == timedelta(hours=1):
            runs[-1].append(moment)
        else:
            runs.append([moment])
    return [f"{r[0]:%Y-%m-%d %H}:00 .. {r[-1]:%Y-%m-%d %H}:00 ({len(r)} h)" for r in runs]


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--profile", default="dev", choices=sorted(profiles.PROFILES))
    args.add_argument("--json", action="store_true")
    given = args.parse_args()
    platform = profiles.PROFILES[given.profile]
    token = secrets.read(platform, "campaigns-admin-token")
    answer = requests.get(
        f"{platform.gateway_url}/function/export/status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if answer.status_code != 200:
        print(f"export status: HTTP {answer.status_code}: {answer.text[:500]}", file=sys.stderr)
        return 1
    state = answer.json()
    if given.json:
        print(json.dumps(state, indent=1))
        return 0
    print(f"window   {state['since']} .. {state['until']}")
    for event_type in ("impression", "click"):
        done = [h for h in state["exported"] if h["eventType"] == event_type]
        waiting = [h["hour"] for h in state["pending"] if h["eventType"] == event_type]
        print(
            f"{event_type:<10} exported {len(done)} h ({sum(h['records'] for h in done)} records)"
            f", pending {len(waiting)} h, lag {state['lagHours'][event_type]} h"
        )
        for run in _ranges(waiting):
            print(f"  pending  {run}")
    for failed in state["failed"]:
        print(
            f"  FAILED   {failed['hour']} {failed['eventType']} "
            f"(attempts {failed['attempts']}): {failed['lastError']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
