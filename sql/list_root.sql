-- The entries of the share's root directory, directories first.
SELECT path, kind, size, du(node_id) AS subtree_bytes FROM ls('/') ORDER BY kind DESC, path;
