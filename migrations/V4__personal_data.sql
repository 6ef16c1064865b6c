-- Calls as personal data: a retention period per tenant, and the indexes that keep
-- SummarizeCalls, the retention sweep and PurgeCalls' scrubbing of the delivery log fast.

-- How long a tenant keeps its calls after they end; NULL keeps them until deleted.
ALTER TABLE tenants ADD COLUMN call_retention_secs bigint
    CHECK (call_retention_secs IS NULL OR call_retention_secs > 0);

-- SummarizeCalls reads a tenant's live calls by start time and needs only these columns: an
-- index-only scan (once vacuum has set the visibility map) never touches the table.
CREATE INDEX calls_summary_idx ON calls (tenant_id, start_time)
    INCLUDE (start_zone, duration_micros, status, call_type, button_id)
    WHERE delete_time IS NULL;

-- The retention sweep takes a tenant's oldest-ending live calls first.
CREATE INDEX calls_end_time_idx ON calls (tenant_id, end_time) WHERE delete_time IS NULL;

-- PurgeCalls scrubs the delivery log of the calls it erases.
CREATE INDEX deliveries_call_idx ON deliveries (tenant_id, call_id);

-- PurgeCalls and the retention sweep scrub every change-log copy of the calls they erase.
CREATE INDEX change_log_call_idx ON change_log (call_id);
