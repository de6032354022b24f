#!/usr/bin/env python3
"""DuckDB on the same Parquet files as `afb bench index`, for side-by-side figures.

Usage: duckdb_index_bench.py BENCH_JSON   (the output of `afb bench index --json --dir DIR`)
Needs `pip install duckdb` (figures in the README: DuckDB 2.0.1).

Each query runs in its own process so its peak RSS is its own. Two threads, like the afb figures.
Prints one JSON object: seconds and peak RSS (bytes) per operation.
"""
import json
import multiprocessing as mp
import resource
import sys
import time

QUERIES = {
    # Full outer join on node_id, classifying like afb's diff.
    "diff": """
        SELECT
          count(*) FILTER (WHERE b.node_id IS NULL) AS deleted,
          count(*) FILTER (WHERE a.node_id IS NULL) AS added,
          count(*) FILTER (WHERE a.node_id IS NOT NULL AND b.node_id IS NOT NULL AND
            (a.size <> b.size OR a.mtime <> b.mtime OR a.ctime <> b.ctime OR a.attributes <> b.attributes
             OR a.xorhash <> b.xorhash OR a.kind <> b.kind)) AS modified,
          count(*) FILTER (WHERE a.name <> b.name) AS renamed,
          count(*) FILTER (WHERE a.parent_id <> b.parent_id) AS moved
        FROM read_parquet('{s1}') a FULL OUTER JOIN read_parquet('{s2}') b ON a.node_id = b.node_id""",
    # Paths of 1000 random nodes: one recursive CTE over all of them.
    "paths_1000": """
        WITH RECURSIVE n AS (SELECT node_id, parent_id, name FROM read_parquet('{s2}')),
        pick AS (SELECT node_id FROM n USING SAMPLE 1000 ROWS),
        walk(start, cur, path) AS (
          SELECT p.node_id, n.parent_id, n.name FROM pick p JOIN n ON n.node_id = p.node_id
          UNION ALL
          SELECT w.start, n.parent_id, n.name || '/' || w.path FROM walk w JOIN n ON n.node_id = w.cur
        )
        SELECT count(*) FROM walk WHERE cur = 0""",
    # The same over a table of directories only (files are leaves: one step from the picked row to its
    # directory, then directory to directory), built in the timed query.
    "paths_1000_dirs_table": """
        CREATE TEMP TABLE d AS SELECT node_id, parent_id, name FROM read_parquet('{s2}') WHERE kind = 1;
        WITH RECURSIVE pick AS (SELECT node_id, parent_id, name FROM read_parquet('{s2}') USING SAMPLE 1000 ROWS),
        walk(start, cur, path) AS (
          SELECT node_id, parent_id, name FROM pick
          UNION ALL
          SELECT w.start, d.parent_id, d.name || '/' || w.path FROM walk w JOIN d ON d.node_id = w.cur
        )
        SELECT count(*) FROM walk WHERE cur = 0""",
    "bytes_by_extension": """
        SELECT lower(CASE WHEN strpos(name, '.') > 0 THEN regexp_extract(name, '\\.([^.]*)$', 1) ELSE '' END) AS ext,
               count(*), sum(size) FROM read_parquet('{s2}') WHERE kind = 0 GROUP BY ext ORDER BY 3 DESC""",
    "du_share": "SELECT sum(size), count(*) FROM read_parquet('{s2}') WHERE kind = 0",
}


def run(name, sql, out):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    t = time.perf_counter()
    *setup, last = [q for q in sql.split(";") if q.strip()]
    for q in setup:
        con.execute(q)
    con.execute(last).fetchall()
    out.put((name, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def main():
    bench = json.load(open(sys.argv[1]))
    s1, s2 = bench["duckdb_inputs"]["snapshot_1"], bench["duckdb_inputs"]["snapshot_2"]
    result = {"duckdb": __import__("duckdb").__version__, "nodes": bench["nodes"]}
    for name, sql in QUERIES.items():
        q = mp.Queue()
        p = mp.Process(target=run, args=(name, sql.format(s1=s1, s2=s2), q))
        p.start()
        _, secs, rss = q.get()
        p.join()
        result[name] = {"seconds": round(secs, 3), "peak_rss_bytes": rss}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
