-- Bytes and files by extension (lower-cased; '' for names without a dot) in the latest snapshots.
SELECT CASE WHEN strpos(name, '.') > 0 THEN lower(regexp_replace(name, '^.*\.', '')) ELSE '' END AS extension,
       count(*) AS files, sum(size) AS bytes
FROM current_nodes
WHERE kind = 0
GROUP BY extension
ORDER BY bytes DESC
LIMIT 25;
