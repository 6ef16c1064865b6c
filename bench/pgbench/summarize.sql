-- SummarizeCalls, a year of the tenant by Paris day (2025-11-01 to 2026-11-01 UTC): the
-- statement of Store::summarize_calls without a grouping, as callsd-bench's `summarize` sends it.
SELECT date_trunc('day'::text, c.start_time AT TIME ZONE 'Europe/Paris'::text)::date,
    0::smallint, 0::smallint, ''::text, count(*), sum(c.duration_micros)::bigint
  FROM calls c
 WHERE c.tenant_id = :tenant AND c.delete_time IS NULL
   AND c.start_time >= '2025-11-01T00:00:00Z' AND c.start_time < '2026-11-01T00:00:00Z'
   AND (NULL::text IS NULL OR c.button_id = NULL::text)
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 LIMIT 10001;
