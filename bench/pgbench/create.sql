-- CreateCall: the statement of Store::create_call (insert + change-log row + NOTIFY trigger).
-- The id imitates a UUIDv7 (time first, as Uuid::now_v7), so the primary key grows at its end.
\set a random(10000000, 99999999)
\set s random(0, 31536000)
\set status random(1, 6)
WITH inserted AS (
    INSERT INTO calls (id, tenant_id, request_id, button_id, client_id,
        caller_number, called_number, tracking_number, number_digits,
        start_local, start_zone, start_time, end_time, duration_micros, status,
        external_id, call_type, record_mime_type, record_url, change_tx, change_seq)
    VALUES ((SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || substr(r, 14))::uuid
             FROM (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') AS h,
                          gen_random_uuid()::text AS r) AS parts),
        :tenant, NULL, 'button-3', 'client-4242',
        '+33 6 ' || :a, '+33 1 23 45 67 89', '+33 4 11 22 33 44',
        '336' || :a || '|33123456789|33411223344',
        '2025-11-01'::timestamp + :s * interval '1 second', 'Europe/Paris',
        '2025-11-01'::timestamptz + :s * interval '1 second',
        '2025-11-01'::timestamptz + (:s + 300) * interval '1 second', 300000000, :status,
        'ext-1', 1, 'audio/mpeg', 'https://records.example.com/1.mp3',
        pg_current_xact_id()::text::bigint, nextval('change_seq'))
    ON CONFLICT (tenant_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING *
), logged AS (INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
     SELECT change_tx, change_seq, tenant_id, id, 1::smallint, to_jsonb(inserted)
     FROM inserted)
SELECT id, button_id, client_id, caller_number, called_number,
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id,
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time,
    change_tx, change_seq
  FROM inserted;
