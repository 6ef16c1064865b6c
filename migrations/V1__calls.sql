-- Tenants (the seed's "company"), their API keys, and their calls.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    time_zone   text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored only as SHA-256 hashes: the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,
    create_time timestamptz NOT NULL DEFAULT now(),
    revoke_time timestamptz
);

-- Secrets shared by every replica (the key that seals page and sync tokens).
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);

-- Every change gets a position (change_tx, change_seq): the writing transaction's id and a
-- sequence number. Readers of the feed only read positions below the oldest transaction still
-- in flight, so a change that commits late can never be passed over.
CREATE SEQUENCE change_seq AS bigint;

CREATE TABLE calls (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_id       text,
    button_id        text NOT NULL DEFAULT '',
    client_id        text NOT NULL DEFAULT '',
    caller_number    text NOT NULL,
    called_number    text NOT NULL,
    tracking_number  text NOT NULL DEFAULT '',
    -- Digits of the three numbers, separated by '|', so search ignores formatting.
    number_digits    text NOT NULL,
    start_local      timestamp NOT NULL,
    start_zone       text NOT NULL,
    start_time       timestamptz NOT NULL,
    end_time         timestamptz NOT NULL,
    duration_micros  bigint NOT NULL DEFAULT 0,
    status           smallint NOT NULL DEFAULT 0,
    external_id      text NOT NULL DEFAULT '',
    call_type        smallint NOT NULL DEFAULT 0,
    record_mime_type text NOT NULL DEFAULT '',
    record_url       text NOT NULL DEFAULT '',
    version          bigint NOT NULL DEFAULT 1,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    -- Calls are soft-deleted so that sync lists can return tombstones until compaction.
    delete_time      timestamptz,
    change_tx        bigint NOT NULL,
    change_seq       bigint NOT NULL
);

CREATE UNIQUE INDEX calls_request_id_idx ON calls (tenant_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX calls_newest_first_idx ON calls (tenant_id, start_time DESC, id DESC)
    WHERE delete_time IS NULL;
CREATE INDEX calls_button_newest_first_idx ON calls (tenant_id, button_id, start_time DESC, id DESC)
    WHERE delete_time IS NULL;
CREATE INDEX calls_changes_idx ON calls (tenant_id, change_tx, change_seq);
CREATE INDEX calls_number_digits_idx ON calls USING gin (number_digits gin_trgm_ops)
    WHERE delete_time IS NULL;

-- The change log: one row per change, with the call as it was after the change.
CREATE TABLE change_log (
    change_tx  bigint NOT NULL,
    change_seq bigint NOT NULL,
    tenant_id  uuid NOT NULL,
    call_id    uuid NOT NULL,
    kind       smallint NOT NULL,
    call       jsonb NOT NULL,
    event_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (change_tx, change_seq)
);

CREATE INDEX change_log_tenant_idx ON change_log (tenant_id, change_tx, change_seq);
CREATE INDEX change_log_event_time_idx ON change_log (event_time);

-- Positions at or below the horizon have been compacted away: tokens older than it expired.
CREATE TABLE change_log_horizon (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    change_tx  bigint NOT NULL,
    change_seq bigint NOT NULL
);
INSERT INTO change_log_horizon (change_tx, change_seq) VALUES (0, 0);

-- Wake every replica's feed once per writing statement; the log stays the source of truth.
CREATE FUNCTION notify_call_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callsd_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
    FOR EACH STATEMENT EXECUTE FUNCTION notify_call_changes();
