"""The forecast's rebuild and reconcile commands, for an operator with access
to the broker (the HTTP equivalents are POST /api/forecast/rebuild and
/reconcile, admin only):

    .venv/bin/python -m services.forecast.cli rebuild
    .venv/bin/python -m services.forecast.cli reconcile [--no-wait]

A running forecast service does the work (a job in its database, claimed by
one instance); this command starts it and, unless --no-wait, follows it to
the end and prints the result as JSON. Exit status 0 when the job is done
(and, for reconcile, found nothing different), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

OPERATOR = {"id": "cli", "role": "admin", "team_id": None, "name": "运维命令",
            "username": "cli"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.forecast.cli",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("rebuild", "reconcile"))
    parser.add_argument("--config", default=None, help="config.yml to use")
    parser.add_argument("--no-wait", action="store_true", help="start the job and return")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)

    import nameko

    from services.common import config
    from services.common.standalone import ServiceRpcClient

    nameko.config.setup(config.load(args.config) if args.config else config.load())
    with ServiceRpcClient("forecast") as forecast:
        job = forecast.start_job(OPERATOR, args.kind)
        print(f"{args.kind} job {job['id']} {job['state']}", file=sys.stderr, flush=True)
        if args.no_wait:
            print(json.dumps(job, ensure_ascii=False))
            return 0
        deadline = time.monotonic() + args.timeout
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(1.0)
            job = forecast.get_job(OPERATOR, job["id"])
            print(f"  {job['state']} {json.dumps(job['progress'], ensure_ascii=False)}",
                  file=sys.stderr, flush=True)
    print(json.dumps(job, ensure_ascii=False, indent=2))
    if job["state"] != "done":
        return 1
    if args.kind == "reconcile" and not (job.get("result") or {}).get("consistent"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
