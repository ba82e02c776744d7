"""``python -m flows.credentials BLOCK``: save the AppZen credentials as a Prefect Secret block.

The values come from ``APPZEN_API_KEY``, ``APPZEN_CUSTOMER_ID`` and ``APPZEN_CUSTOMER_KEY`` when
set, else from a hidden prompt, so they never land in the shell history; nothing is printed but
the block's name. Flows read the block with ``credentials_block=BLOCK`` (stored encrypted by the
Prefect server; the worker's environment then needs no AppZen secret).
"""

from __future__ import annotations

import getpass
import os
import sys

from prefect.blocks.system import Secret

FIELDS = {
    "api_key": "APPZEN_API_KEY",
    "customer_id": "APPZEN_CUSTOMER_ID",
    "customer_key": "APPZEN_CUSTOMER_KEY",
}


def read_credentials() -> dict[str, str]:
    """Each credential from its environment variable, or a hidden prompt when it is unset."""
    values: dict[str, str] = {}
    for field, variable in FIELDS.items():
        value = os.environ.get(variable) or getpass.getpass(f"{variable}: ")
        if not value.strip():
            raise SystemExit(f"{variable} is empty: set it or type it at the prompt")
        values[field] = value.strip()
    return values


def save_credentials(block: str, values: dict[str, str]) -> None:
    """Save ``values`` (api_key, customer_id, customer_key) as the Secret block ``block``."""
    Secret(value=values).save(block, overwrite=True)


def main(argv: list[str]) -> int:
    """Save the block named on the command line; the exit code says whether it worked."""
    if len(argv) != 1:
        print("usage: python -m flows.credentials BLOCK_NAME", file=sys.stderr)
        return 2
    save_credentials(argv[0], read_credentials())
    print(f"saved Prefect Secret block {argv[0]!r} (api_key, customer_id, customer_key)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
