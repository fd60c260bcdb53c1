#!/usr/bin/env python3
"""The independent PostgreSQL client of the tests (psycopg 3): it reads back what toolcfg's libpq
wrapper wrote, and writes rows for the wrapper to read.

  postgres_peer.py read URL SQL      prints the rows of SQL as a JSON array of arrays
                                     (NULL as null, booleans and integers as JSON's own)
  postgres_peer.py write URL TABLE   inserts the JSON array of arrays read from standard input
                                     into TABLE, one parameterised INSERT per row, one transaction
"""
import json
import sys

import psycopg
from psycopg import sql


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("read", "write"):
        print(__doc__, file=sys.stderr)
        return 64
    mode, url, argument = sys.argv[1:]
    with psycopg.connect(url) as connection:
        if mode == "read":
            rows = connection.execute(argument).fetchall()
            json.dump([list(row) for row in rows], sys.stdout, ensure_ascii=False)
        else:
            rows = json.load(sys.stdin)
            with connection.transaction():
                for row in rows:
                    statement = sql.SQL("INSERT INTO {} VALUES ({})").format(
                        sql.Identifier(argument), sql.SQL(", ").join(sql.Placeholder() * len(row)))
                    connection.execute(statement, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
