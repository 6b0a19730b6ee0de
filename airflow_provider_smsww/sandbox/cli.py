"""``smsww-sandbox``: serve the sandbox on loopback and print the Airflow connection that reaches it.

Example::

    smsww-sandbox --port 8765 --credit 20 --fault-5xx-rate 0.1 --seed 7
    smsww-sandbox --rate-limit 20   # the account's rate limit, shared by every process that sends
    export AIRFLOW_CONN_SMSWW_DEFAULT='<the JSON printed>'

The connection JSON contains the sandbox's token (a throw-away value, printed on purpose so that it
can be pasted); the server itself never logs it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from decimal import Decimal

from airflow_provider_smsww.sandbox.config import SandboxConfig
from airflow_provider_smsww.sandbox.faults import FaultConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsww-sandbox", description=__doc__.splitlines()[0])
    d = SandboxConfig()
    p.add_argument("--host", default="127.0.0.1", help="interface (default loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port, 0 for a free one (default 8765)")
    p.add_argument("--token", default=d.token, help="static Bearer token accepted by the SMS paths")
    p.add_argument("--email", default=d.email, help="account email for POST /tokens (HTTP Basic user)")
    p.add_argument("--api-key", default=d.api_key, help="API key for POST /tokens (HTTP Basic password)")
    p.add_argument("--credit", type=Decimal, default=Decimal(str(d.credit)), help="starting credit, EUR")
    p.add_argument("--forbidden-word", action="append", dest="forbidden_words", help="repeatable")
    p.add_argument("--pending-after", type=float, default=d.pending_after, help="seconds NEW -> PENDING")
    p.add_argument("--delivered-after", type=float, default=d.delivered_after, help="seconds -> final")
    p.add_argument("--seed", type=int, default=0, help="seed for ids and random faults")
    p.add_argument("--oauth-envelope", action="store_true", help='wrap POST /tokens answers in {"data": ...}')
    p.add_argument(
        "--rate-limit",
        type=float,
        help="the account's rate limit, requests per second to the SMS API (a token bucket holding one "
        "second of them; 429 with Retry-After beyond it; default none)",
    )
    p.add_argument("--fault-5xx-rate", type=float, default=0.0, help="5xx before processing")
    p.add_argument("--fault-5xx-after-rate", type=float, default=0.0, help="5xx after storing the message")
    p.add_argument("--fault-5xx-status", type=int, default=503)
    p.add_argument("--fault-429-rate", type=float, default=0.0)
    p.add_argument("--fault-retry-after", type=float, default=1.0, help="Retry-After seconds of a 429")
    p.add_argument("--fault-drop-before-rate", type=float, default=0.0)
    p.add_argument("--fault-drop-after-rate", type=float, default=0.0)
    p.add_argument("--fault-latency", type=float, default=0.0, help="seconds added to each request")
    p.add_argument(
        "--fault-path", action="append", dest="fault_paths", help="path prefix faults apply to (repeatable)"
    )
    p.add_argument(
        "--state-file",
        help="sqlite file keeping messages, credit, tokens and transactions across restarts "
        "(created if missing; default: memory only)",
    )
    p.add_argument("--log-level", default="warning")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    faults = FaultConfig(
        rate_5xx=args.fault_5xx_rate,
        rate_5xx_after=args.fault_5xx_after_rate,
        status_5xx=args.fault_5xx_status,
        rate_429=args.fault_429_rate,
        retry_after=args.fault_retry_after,
        rate_drop_before=args.fault_drop_before_rate,
        rate_drop_after=args.fault_drop_after_rate,
        latency=args.fault_latency,
        seed=args.seed,
    )
    if args.fault_paths:
        faults.paths = tuple(args.fault_paths)
    config = {
        "token": args.token,
        "email": args.email,
        "api_key": args.api_key,
        "credit": args.credit,
        "pending_after": args.pending_after,
        "delivered_after": args.delivered_after,
        "seed": args.seed,
        "oauth_envelope": args.oauth_envelope,
        "state_file": args.state_file,
        "rate_limit": args.rate_limit,
        **({"forbidden_words": tuple(args.forbidden_words)} if args.forbidden_words else {}),
    }
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox(args.host, args.port, faults=faults, log_level=args.log_level, **config) as server:
        print(f"SMS Worldwide sandbox on {server.url} (Ctrl-C to stop)")
        print(f"AIRFLOW_CONN_SMSWW_DEFAULT='{server.conn_json}'", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
