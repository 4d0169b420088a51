"""`dsar stores check` and `dsar stores draft STORE`: mapping a company's systems (docs/STORES.md).

Both read the stores file as every other command does (an invalid file is its one line and exit
2), connect to the stores only, and write nothing anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from api.settings import Settings
from catalogue import load_catalogue
from stores.check import check
from stores.draft import draft


def add_stores_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("stores", help="check the stores file, or draft a section of it")
    sub = p.add_subparsers(dest="stores_command", required=True)
    sub.add_parser(
        "check",
        help="connect to every store and report each section: ok, warn or error "
        "(exit 1 on any error)",
    )
    dr = sub.add_parser("draft", help="print draft [categories.*] sections from a store's schema")
    dr.add_argument("store", help="a store of the stores file (a PostgreSQL or MySQL database)")


def cmd_stores(settings: Settings, args: argparse.Namespace) -> int:
    # The stores file first: a broken one is reported before the catalogue is read.
    config = settings.locate().stores
    catalogue = load_catalogue(settings.catalogue_file)
    if args.stores_command == "check":
        report = asyncio.run(check(config, catalogue))
        for line in report.lines():
            print(line)
        print(report.summary())
        return 1 if report.errors else 0
    store = next((s for s in config.stores if s.name == args.store), None)
    if store is None or not store.is_table_store:
        names = ", ".join(s.name for s in config.stores if s.is_table_store)
        print(
            f"dsar stores: no database store named '{args.store}' (stores: {names})",
            file=sys.stderr,
        )
        return 2
    print(asyncio.run(draft(store.dsn, catalogue, store.name)), end="")
    return 0
