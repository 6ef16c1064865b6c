-- GetCall: the statement of Store::get_call. Seeded call n has id 01900000-0000-7000-8000-<n>.
\set n random(1, :seeded)
SELECT to_jsonb(c) FROM calls c
 WHERE tenant_id = :tenant AND id = ('01900000-0000-7000-8000-' || lpad(:n::text, 12, '0'))::uuid
   AND delete_time IS NULL;
