-- Files not written for more than a year (mtime is a UTC timestamp with nanoseconds), largest first.
-- The 50 files are picked first and their paths looked up after, so path() runs 50 times.
SELECT path(parent_id, name) AS path, size, last_write
FROM (
  SELECT parent_id, name, size, mtime AS last_write
  FROM current_nodes
  WHERE kind = 0 AND mtime < now() - INTERVAL '365 days'
  ORDER BY size DESC
  LIMIT 50
)
ORDER BY size DESC, path;
