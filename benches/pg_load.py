#!/usr/bin/env python3
"""Copy a seeded recoverydesk SQLite database into a migrated PostgreSQL database, in bulk.

Standard library and `psql` only: every table the two databases share is streamed through
`psql -c "\\copy TABLE (COLUMNS) FROM STDIN"` in COPY's text format (booleans as 0/1, blobs
as bytea hex), with `session_replication_role = replica` so triggers and foreign-key checks
do not run row by row (the SQLite data is consistent, `ticket_counts` included). Then every
id sequence is moved past the largest id, and the tables are ANALYZEd (what autovacuum does
on a live server). For benches/console_bench.sh BACKEND=postgres.

Usage: pg_load.py SQLITE_FILE POSTGRES_URL
Prints one JSON line: rows per table and seconds.
"""

import json
import sqlite3
import subprocess
import sys
import time


def psql(url, *args, stdin=None):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, *args], input=stdin,
                          check=True, capture_output=True)


def text_value(v):
    if v is None:
        return "\\N"
    if isinstance(v, bytes):
        return "\\\\x" + v.hex()
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    db_file, url = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    src = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    pg_tables = set(psql(url, "-At", "-c",
                         "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                    .stdout.decode().split())
    order = [r[0] for r in src.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY rowid")]
    counts = {}
    for table in order:
        if table not in pg_tables or table.startswith("__diesel") or table.startswith("sqlite_"):
            continue
        n = src.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        if n == 0:
            continue
        pg_columns = set(psql(url, "-At", "-c",
                              f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'")
                         .stdout.decode().split())
        columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")') if r[1] in pg_columns]
        cols = ", ".join(columns)
        proc = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", "SET session_replication_role = replica",
             "-c", f"DELETE FROM {table}", "-c", f"COPY {table} ({cols}) FROM STDIN"],
            stdin=subprocess.PIPE)
        # psql -c with COPY FROM STDIN reads the data from psql's stdin.
        cur = src.execute(f'SELECT {cols} FROM "{table}"')
        while True:
            rows = cur.fetchmany(10_000)
            if not rows:
                break
            proc.stdin.write("".join("\t".join(text_value(v) for v in row) + "\n" for row in rows).encode())
        proc.stdin.close()
        if proc.wait() != 0:
            sys.exit(f"copying {table} failed")
        counts[table] = n
    psql(url, "-c", """
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT c.relname AS t, a.attname AS col, pg_get_serial_sequence(c.relname, a.attname) AS s
                   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                   WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
                     AND pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL LOOP
            EXECUTE format('SELECT setval(%L, GREATEST(1, (SELECT COALESCE(MAX(%I), 0) FROM %I)))', r.s, r.col, r.t);
          END LOOP;
        END $$;""")
    psql(url, "-c", "ANALYZE")
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
