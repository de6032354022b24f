-- Files not written for more than a year (mtime is a UTC timestamp with nanoseconds).
SELECT path(parent_id, name) AS path, size, mtime AS last_write
FROM current_nodes
WHERE kind = 0 AND mtime < now() - INTERVAL '365 days'
ORDER BY size DESC
LIMIT 50;
