-- Growth per share over time: totals per snapshot and the change against the previous one.
SELECT tenant_id, share_id, snapshot_id, created_at, files, bytes,
       bytes - LAG(bytes) OVER (PARTITION BY tenant_id, share_id ORDER BY snapshot_id) AS bytes_growth,
       files - LAG(files) OVER (PARTITION BY tenant_id, share_id ORDER BY snapshot_id) AS files_growth,
       stored_bytes
FROM snapshots
ORDER BY tenant_id, share_id, snapshot_id;
