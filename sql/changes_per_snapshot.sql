-- What changed in each snapshot: rows per kind of change (a renamed directory is one row).
SELECT tenant_id, share_id, snapshot_id, change,
       sum(CASE WHEN modified THEN 1 ELSE 0 END) AS modified,
       sum(CASE WHEN renamed THEN 1 ELSE 0 END) AS renamed,
       sum(CASE WHEN moved THEN 1 ELSE 0 END) AS moved,
       count(*) AS nodes, sum(coalesce(size, old_size)) AS bytes
FROM changes
GROUP BY tenant_id, share_id, snapshot_id, change
ORDER BY tenant_id, share_id, snapshot_id, change;
