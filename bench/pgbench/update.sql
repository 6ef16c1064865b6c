-- UpdateCall (status): Store::update_call reads the call, then writes every field back with
-- the new status (+ change-log row + NOTIFY). The read also returns the columns as variables.
\set n random(1, :seeded)
\set status random(1, 6)
SELECT id, button_id, client_id, caller_number, called_number, tracking_number, number_digits,
    start_local, start_zone, start_time, end_time, duration_micros, status AS old_status,
    external_id, call_type, record_mime_type, record_url, version, create_time, update_time,
    delete_time, change_tx, change_seq FROM calls
 WHERE tenant_id = :tenant AND id = ('01900000-0000-7000-8000-' || lpad(:n::text, 12, '0'))::uuid
   AND delete_time IS NULL \gset
WITH updated AS (
    UPDATE calls SET button_id = :button_id, client_id = :client_id,
        caller_number = :caller_number, called_number = :called_number,
        tracking_number = :tracking_number, number_digits = :number_digits,
        start_local = :start_local, start_zone = :start_zone, start_time = :start_time,
        end_time = :end_time, duration_micros = :duration_micros, status = :status,
        external_id = :external_id, call_type = :call_type,
        record_mime_type = :record_mime_type, record_url = :record_url, version = version + 1,
        update_time = now(), (change_tx, change_seq) =
            (pg_current_xact_id()::text::bigint, nextval('change_seq'))
    WHERE tenant_id = :tenant
      AND id = ('01900000-0000-7000-8000-' || lpad(:n::text, 12, '0'))::uuid
      AND version = :version AND delete_time IS NULL
    RETURNING *
), logged AS (INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
     SELECT change_tx, change_seq, tenant_id, id, 2::smallint, to_jsonb(updated)
     FROM updated)
SELECT id, button_id, client_id, caller_number, called_number,
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id,
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time,
    change_tx, change_seq
  FROM updated;
