"""``python -m examples.receiver --port 9100 --secret whsec_...``: run the reference receiver."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from examples.receiver.app import ReceiverConfig, create_receiver


def main() -> None:
    parser = argparse.ArgumentParser(description="Reference Qala webhook receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--secret", action="append", required=True, help="whsec_... (repeat during a rotation)")
    parser.add_argument("--store", type=Path, help="NDJSON file keeping the changes (and the ids seen)")
    parser.add_argument("--fail-ratio", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = ReceiverConfig(args.secret, args.store, args.fail_ratio, args.slow_seconds, args.seed)
    uvicorn.run(create_receiver(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
