#!/usr/bin/env python3
"""afb's SQL next to DuckDB on the same Parquet file, in one run.

Usage: sql_vs_duckdb.py AFB REPO TENANT SHARE   (AFB: the afb binary; REPO: a local repository directory)

The repository must hold that share alone, and its latest snapshot must be one base file (as `afb bench
index` writes share `full`; move its other share, `bench`, away first). Each afb
query runs as its own `afb sql` process (process start counted); each DuckDB query in a fresh connection
with 2 threads (connection counted). Queries of `sql/` that need afb's path functions run in DuckDB with
the name instead of the path (`one_of_them`, `path`); the ones DuckDB has no counterpart for on one file
(`ls`, `find`, `du`, the `changes` and `snapshots` tables) are timed for afb only. Prints JSON: seconds
per query for both, the 1-minute load average before and after, and the file.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# name: (afb SQL, DuckDB SQL over '{f}' or None)
QUERIES = {
    "count_star": ("SELECT count(*) FROM current_nodes", "SELECT count(*) FROM '{f}'"),
    "kind_count": (
        "SELECT kind, count(*) FROM current_nodes GROUP BY kind",
        "SELECT kind, count(*) FROM '{f}' GROUP BY kind",
    ),
    "top10_files_by_size": (
        "SELECT node_id, name, size FROM current_nodes WHERE kind = 0 ORDER BY size DESC LIMIT 10",
        "SELECT node_id, name, size FROM '{f}' WHERE kind = 0 ORDER BY size DESC LIMIT 10",
    ),
    "bytes_by_extension": (
        "@sql/bytes_by_extension.sql",
        """SELECT CASE WHEN strpos(name, '.') > 0 THEN lower(regexp_replace(name, '^.*\\.', '')) ELSE '' END AS extension,
                  count(*) AS files, sum(size) AS bytes
           FROM '{f}' WHERE kind = 0 GROUP BY extension ORDER BY bytes DESC LIMIT 25""",
    ),
    "likely_duplicates": (
        "@sql/likely_duplicates.sql",
        """SELECT size, xorhash, count(*) AS copies, (count(*) - 1) * size AS wasted_bytes, min(name) AS one_of_them
           FROM '{f}' WHERE kind = 0 AND xorhash <> 0 AND size > 0
           GROUP BY size, xorhash HAVING count(*) > 1 ORDER BY wasted_bytes DESC LIMIT 50""",
    ),
    "untouched_for_a_year": (
        "@sql/untouched_for_a_year.sql",
        """SELECT name AS path, size, mtime AS last_write FROM '{f}'
           WHERE kind = 0 AND mtime < now() - INTERVAL '365 days' ORDER BY size DESC LIMIT 50""",
    ),
    "largest_directories": ("@sql/largest_directories.sql", None),
    "list_root": ("@sql/list_root.sql", None),
    "find_pdfs": ("@sql/find_pdfs.sql", None),
    "changes_per_snapshot": ("@sql/changes_per_snapshot.sql", None),
    "growth_per_share": ("@sql/growth_per_share.sql", None),
}


def main():
    afb, repo, tenant, share = sys.argv[1:5]
    # afb's queries read `current_nodes` of every share; DuckDB reads one file. Only a repository holding
    # just this share compares the same rows (`afb bench index` also writes a share `bench`: move it away).
    shares = sorted(str(p.parent.parent.relative_to(repo)) for p in pathlib.Path(repo).glob("*/*/index/snapshots"))
    if shares != [f"{tenant}/{share}"]:
        sys.exit(f"{repo} holds the shares {shares}; the comparison needs {tenant}/{share} alone")
    snaps = sorted((pathlib.Path(repo) / tenant / share / "index" / "snapshots").glob("*.json"))
    m = json.loads(snaps[-1].read_text())
    if len(m["layers"]) != 1:
        sys.exit(f"{snaps[-1]}: the latest snapshot is not one base file")
    f = str(pathlib.Path(repo) / m["layers"][0]["nodes"]["key"])
    import duckdb

    out = {"duckdb": duckdb.__version__, "file": f, "rows": m["totals"]["nodes"], "load_before": os.getloadavg()[0]}
    for name, (afb_sql, duck_sql) in QUERIES.items():
        arg = afb_sql if not afb_sql.startswith("@") else "@" + str(ROOT / afb_sql[1:])
        t = time.perf_counter()
        subprocess.run(
            [afb, "sql", "--repo", repo, "--tenant", tenant, "--share", share, "--csv", arg],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        row = {"afb": round(time.perf_counter() - t, 3)}
        if duck_sql:
            t = time.perf_counter()
            con = duckdb.connect()
            con.execute("SET threads = 2")
            con.execute(duck_sql.format(f=f)).fetchall()
            row["duckdb"] = round(time.perf_counter() - t, 3)
            con.close()
        out[name] = row
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
