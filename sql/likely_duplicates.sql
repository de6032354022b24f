-- Likely duplicates: files with the same size and the same 64-bit xorhash (0 = hash unknown).
-- The groups are found first and the path of one file of each (the lowest node id) looked up after, so
-- path() runs once per group shown, not once per file.
WITH groups AS (
  SELECT size, xorhash, count(*) AS copies, (count(*) - 1) * size AS wasted_bytes, min(node_id) AS one_id
  FROM current_nodes
  WHERE kind = 0 AND xorhash <> 0 AND size > 0
  GROUP BY size, xorhash
  HAVING count(*) > 1
  ORDER BY wasted_bytes DESC
  LIMIT 50
)
SELECT g.size, g.xorhash, g.copies, g.wasted_bytes, min(path(n.parent_id, n.name)) AS one_of_them
FROM groups g JOIN current_nodes n ON n.node_id = g.one_id AND n.size = g.size AND n.xorhash = g.xorhash
GROUP BY g.size, g.xorhash, g.copies, g.wasted_bytes
ORDER BY g.wasted_bytes DESC, one_of_them;
