-- The service registry, deployments and object state, for the admin API.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: list_services
-- the registered services (all, or one): what their latest deployment says of
-- them, and the settings operators changed
SELECT svc.name, svc.ty, svc.deployment_id, svc.handlers, svc.public, svc.revision,
       (SELECT doc FROM jsonb_array_elements(d.services) AS doc WHERE doc->>'name' = svc.name) AS registered,
       EXTRACT(EPOCH FROM svc.idempotency_retention)::float8 AS idempotency_retention,
       EXTRACT(EPOCH FROM svc.workflow_retention)::float8 AS workflow_retention,
       EXTRACT(EPOCH FROM svc.journal_retention)::float8 AS journal_retention,
       EXTRACT(EPOCH FROM svc.inactivity_timeout)::float8 AS inactivity_timeout,
       EXTRACT(EPOCH FROM svc.abort_timeout)::float8 AS abort_timeout
  FROM {s}.service svc LEFT JOIN {s}.deployment d ON d.id = svc.deployment_id
 WHERE %(name)s::text IS NULL OR svc.name = %(name)s
 ORDER BY svc.name

-- name: modify_service
-- change a registered service's settings (NULL leaves one as it is); returns
-- whether the service exists
UPDATE {s}.service
   SET public = COALESCE(%(public)s, public),
       idempotency_retention = COALESCE(%(idempotency_retention)s * interval '1 second', idempotency_retention),
       workflow_retention = COALESCE(%(workflow_retention)s * interval '1 second', workflow_retention),
       journal_retention = COALESCE(%(journal_retention)s * interval '1 second', journal_retention),
       inactivity_timeout = COALESCE(%(inactivity_timeout)s * interval '1 second', inactivity_timeout),
       abort_timeout = COALESCE(%(abort_timeout)s * interval '1 second', abort_timeout),
       modified_at = now()
 WHERE name = %(name)s
RETURNING name

-- name: list_deployments
-- application versions and SDK endpoints (those with a uri), with their live workers
-- and in-flight invocations
SELECT d.id, d.services, d.compatible_with, d.created_at, d.last_seen_at, d.uri, d.protocol_mode,
       d.min_protocol_version, d.max_protocol_version, d.use_http_11, d.additional_headers, d.sdk_version,
       (SELECT count(*) FROM {s}.worker w WHERE w.deployment_id = d.id) AS workers,
       (SELECT count(*) FROM {s}.task t WHERE t.deployment_id = d.id) AS in_flight
  FROM {s}.deployment d
 WHERE %(id)s::text IS NULL OR d.id = %(id)s
 ORDER BY d.created_at

-- name: clear_state_of_key
-- remove an object key's state (one entry, or all of them when name is NULL)
DELETE FROM {s}.state_entry
 WHERE service = %(service)s AND key = %(key)s AND (%(name)s::text IS NULL OR name = %(name)s)

-- name: set_state_entry
-- write one state entry of an object key
INSERT INTO {s}.state_entry (service, key, name, value) VALUES (%(service)s, %(key)s, %(name)s, %(value)s)
ON CONFLICT (service, key, name) DO UPDATE SET value = EXCLUDED.value
