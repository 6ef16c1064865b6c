-- Watches (webhook subscriptions), their signing keys and their delivery log.
-- Secrets are stored AES-GCM encrypted (nonce || ciphertext) under CALLSD_SECRET_KEY.

CREATE TABLE crypto_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    secret      bytea NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crypto_keys_tenant_idx ON crypto_keys (tenant_id, create_time);

CREATE TABLE watches (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                     text NOT NULL DEFAULT '',
    address                  text NOT NULL,
    method                   smallint NOT NULL,
    enabled                  boolean NOT NULL DEFAULT true,
    disabled_reason          text NOT NULL DEFAULT '',
    basic_username           text NOT NULL DEFAULT '',
    basic_password           bytea,
    headers                  jsonb NOT NULL DEFAULT '[]',
    schema                   text NOT NULL DEFAULT '',
    -- grant_type, client_id, auth_url, access_token_url, scope; null without OAuth2.
    oauth2                   jsonb,
    oauth2_client_secret     bytea,
    oauth2_refresh_token     bytea,
    signature_enabled        boolean NOT NULL DEFAULT false,
    crypto_key_ids           uuid[] NOT NULL DEFAULT '{}',
    add_previous_data        boolean NOT NULL DEFAULT false,
    create_time              timestamptz NOT NULL DEFAULT now(),
    update_time              timestamptz NOT NULL DEFAULT now(),
    -- Delivery state: every change at or below the cursor is final for this watch.
    cursor_tx                bigint NOT NULL,
    cursor_seq               bigint NOT NULL,
    -- Attempts made for the change after the cursor, and when the next one is due.
    attempts                 integer NOT NULL DEFAULT 0,
    next_attempt_time        timestamptz NOT NULL DEFAULT now(),
    -- The replica delivering for this watch, until the lease expires.
    lease_owner              uuid,
    lease_expire_time        timestamptz,
    last_success_time        timestamptz,
    last_failure_time        timestamptz,
    consecutive_failures     integer NOT NULL DEFAULT 0,
    -- The first failure since the last success; a watch failing too long is disabled.
    failing_since            timestamptz
);
CREATE INDEX watches_tenant_idx ON watches (tenant_id, create_time, id);
CREATE INDEX watches_due_idx ON watches (next_attempt_time) WHERE enabled;

CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    watch_id         uuid NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
    tenant_id        uuid NOT NULL,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    call_id          uuid NOT NULL,
    change_tx        bigint NOT NULL,
    change_seq       bigint NOT NULL,
    attempt          integer NOT NULL,
    attempt_time     timestamptz NOT NULL,
    request_headers  jsonb NOT NULL,
    request_body     text NOT NULL,
    response_status  integer NOT NULL DEFAULT 0,
    response_body    text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    duration_micros  bigint NOT NULL,
    outcome          smallint NOT NULL,
    manual           boolean NOT NULL DEFAULT false
);
CREATE INDEX deliveries_watch_idx ON deliveries (watch_id, id DESC);
CREATE INDEX deliveries_time_idx ON deliveries (attempt_time);
