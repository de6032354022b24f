-- The 20 largest directories of the focus snapshot, by bytes in their whole subtree.
SELECT path(node_id) AS directory, du(node_id) AS bytes, du_files(node_id) AS files
FROM current_nodes
WHERE kind = 1
ORDER BY bytes DESC, directory
LIMIT 20;
