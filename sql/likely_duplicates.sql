-- Likely duplicates: files with the same size and the same 64-bit xorhash (0 = hash unknown).
SELECT size, xorhash, count(*) AS copies, (count(*) - 1) * size AS wasted_bytes,
       min(path(parent_id, name)) AS one_of_them
FROM current_nodes
WHERE kind = 0 AND xorhash <> 0 AND size > 0
GROUP BY size, xorhash
HAVING count(*) > 1
ORDER BY wasted_bytes DESC
LIMIT 50;
