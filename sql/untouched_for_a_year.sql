-- Files not written for more than a year (mtime is INT64 nanoseconds since the epoch, UTC).
SELECT path(parent_id, name) AS path, size, to_timestamp_nanos(mtime) AS last_write
FROM current_nodes
WHERE kind = 0 AND to_timestamp_nanos(mtime) < now() - INTERVAL '365 days'
ORDER BY size DESC
LIMIT 50;
