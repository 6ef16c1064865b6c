-- GetCall: the statement of Store::get_call. Seeded call n has id 01900000-0000-7000-8000-<n>.
\set n random(1, :seeded)
SELECT id, button_id, client_id, caller_number, called_number,
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id,
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time,
    change_tx, change_seq
  FROM calls
 WHERE tenant_id = :tenant AND id = ('01900000-0000-7000-8000-' || lpad(:n::text, 12, '0'))::uuid
   AND delete_time IS NULL;
