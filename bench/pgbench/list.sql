-- ListCalls, first page of 50 newest first: the statement of Store::list_calls (LIMIT 50 + 1,
-- then the feed's barrier and seen positions in a row of their own).
WITH barrier AS (SELECT COALESCE(NULL::bigint,
     pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS tx), seen AS (
    SELECT change_tx, change_seq FROM change_log
    WHERE tenant_id = :tenant AND change_tx >= (SELECT tx FROM barrier)
    ORDER BY change_tx, change_seq LIMIT 64)
(SELECT NULL::bigint, NULL::bigint[], NULL::bigint[], id, button_id, client_id, caller_number, called_number,
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id,
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time,
    change_tx, change_seq
  FROM calls c
 WHERE c.tenant_id = :tenant AND c.delete_time IS NULL
 ORDER BY start_time DESC, id DESC LIMIT 51)
UNION ALL
SELECT (SELECT tx FROM barrier), (SELECT array_agg(change_tx) FROM seen),
    (SELECT array_agg(change_seq) FROM seen),
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
 ORDER BY start_time DESC, id DESC;
