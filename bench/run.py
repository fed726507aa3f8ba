"""Run the benchmarks: every ``bench/bench_*.py`` module's ``run(quick)``.

    .venv/bin/python bench/run.py [--quick] [--only audit]     (or: make bench [QUICK=1] [PG=1])

The database is a throw-away one: a SQLite file under var/ (removed afterwards), or,
when DATABASE_URL points at PostgreSQL (``make bench PG=1`` starts one), a test
database on that server, dropped afterwards. The demo database is never touched.
Writes bench/results.json (a list of {name, value, unit, baseline, ratio, goal, met})
and prints a table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_database() -> tuple[str, Callable[[], None]]:
    """Point Django at a throw-away database; returns (description, cleanup)."""
    url = os.environ.get("DATABASE_URL", "")
    sqlite_file = None
    if not url.startswith(("postgres://", "postgresql://")):
        var = ROOT / "var"
        var.mkdir(exist_ok=True)
        sqlite_file = var / f"bench-{os.getpid()}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{sqlite_file}"
    os.environ.pop("REDIS_URL", None)  # tasks, if any, run in-process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carmfg.settings")
    os.environ["CARMFG_ENV"] = "test"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if sqlite_file is not None:
        call_command("migrate", verbosity=0)
        description = f"SQLite {sqlite3.sqlite_version}, file {sqlite_file.relative_to(ROOT)} (WAL, synchronous=FULL)"

        def cleanup() -> None:
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)

    else:
        old_name = connection.settings_dict["NAME"]
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SHOW fsync")
            fsync = cursor.fetchone()[0]
        settings = connection.settings_dict
        description = (
            f"PostgreSQL {version} at {settings['HOST']}:{settings['PORT']}, throw-away database "
            f"{test_name} (fsync={fsync})"
        )

        def cleanup() -> None:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    return description, cleanup


def _modules(only: str | None) -> list[str]:
    names = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if only:
        names = [n for n in names if only in n]
    return names


def _table(results: list[dict]) -> str:
    header = ("benchmark", "value", "unit", "baseline", "ratio", "goal", "met")
    rows = [header] + [
        (r["name"], f"{r['value']:,}", r["unit"], f"{r['baseline']:,}", f"{r['ratio']}x", r["goal"], "yes" if r["met"] else "NO")
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--only", help="run only modules whose name contains this")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()

    description, cleanup = _setup_database()
    print(f"database: {description}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"mode: {'quick' if args.quick else 'full'}\n")
    results: list[dict] = []
    try:
        for name in _modules(args.only):
            module = importlib.import_module(f"bench.{name}")
            print(f"running {name} ...", flush=True)
            for result in module.run(quick=args.quick):
                entry = result.as_dict() | {"module": name, "database": description, "quick": args.quick}
                results.append(entry)
                print(f"  {result.name}: {result.value:,} {result.unit} (baseline {result.baseline:,}, {result.ratio}x)", flush=True)
    finally:
        cleanup()
    Path(args.output).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(_table(results))
    print(f"\nwritten to {Path(args.output).relative_to(ROOT) if Path(args.output).is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
