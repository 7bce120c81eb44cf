-- SDK endpoint deployments: registered through the admin API or `restate-pg deployments register`,
-- after discovery. Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: lock_registry
-- serialize registrations, updates and removals of deployments until the transaction ends
-- (a mode that conflicts with itself; workers announcing their deployment wait as briefly)
LOCK TABLE {s}.deployment IN SHARE ROW EXCLUSIVE MODE

-- name: endpoint_deployments
-- the SDK endpoint deployments, to match a uri against (Restate compares authority and path)
SELECT id, uri, protocol_mode, min_protocol_version, max_protocol_version, use_http_11,
       additional_headers, sdk_version, services, created_at
  FROM {s}.deployment WHERE uri IS NOT NULL
 ORDER BY created_at

-- name: service_revisions
-- every registered service's type, latest deployment and revision, for the rules a
-- registration must respect (no type change unless breaking; the next revision)
SELECT name, ty, deployment_id, revision FROM {s}.service

-- name: save_endpoint_deployment
-- record an endpoint deployment (a new one, or one overwritten with force, keeping its id)
INSERT INTO {s}.deployment AS d (id, services, uri, protocol_mode, min_protocol_version, max_protocol_version,
                                 use_http_11, additional_headers, sdk_version, manifest)
VALUES (%(id)s, %(services)s, %(uri)s, %(protocol_mode)s, %(min_protocol_version)s, %(max_protocol_version)s,
        %(use_http_11)s, %(additional_headers)s, %(sdk_version)s, %(manifest)s)
ON CONFLICT (id) DO UPDATE
   SET services = EXCLUDED.services, uri = EXCLUDED.uri, protocol_mode = EXCLUDED.protocol_mode,
       min_protocol_version = EXCLUDED.min_protocol_version, max_protocol_version = EXCLUDED.max_protocol_version,
       use_http_11 = EXCLUDED.use_http_11, additional_headers = EXCLUDED.additional_headers,
       sdk_version = EXCLUDED.sdk_version, manifest = EXCLUDED.manifest, last_seen_at = now()

-- name: save_endpoint_services
-- make an endpoint deployment the latest of the services it registers, at the revisions
-- given (`ty` as in invocation.service_ty); the operator's overrides go, as with any new revision
INSERT INTO {s}.service AS svc (name, ty, deployment_id, handlers, public, revision)
SELECT s->>'name',
       CASE s->>'ty' WHEN 'VirtualObject' THEN 'virtual_object' WHEN 'Workflow' THEN 'workflow' ELSE 'service' END,
       %(id)s, s->'handlers', (s->>'public')::boolean, (s->>'revision')::integer
  FROM jsonb_array_elements(%(services)s) AS s
ON CONFLICT (name) DO UPDATE
   SET ty = EXCLUDED.ty, handlers = EXCLUDED.handlers, deployment_id = EXCLUDED.deployment_id,
       revision = EXCLUDED.revision, public = EXCLUDED.public, idempotency_retention = NULL,
       workflow_retention = NULL, journal_retention = NULL, inactivity_timeout = NULL, abort_timeout = NULL,
       modified_at = now()

-- name: drop_deployment_services
-- forget the services a deployment was the latest of and no longer registers (all of them
-- when it is removed: `names` empty)
DELETE FROM {s}.service WHERE deployment_id = %(id)s AND NOT (name = ANY(%(names)s::text[]))

-- name: remove_deployment
-- forget a deployment; returns its id when there was one
DELETE FROM {s}.deployment WHERE id = %(id)s RETURNING id

-- name: update_endpoint_connection
-- change where and how an endpoint deployment is reached, keeping its services (PATCH
-- without overwrite)
UPDATE {s}.deployment
   SET uri = %(uri)s, protocol_mode = %(protocol_mode)s, use_http_11 = %(use_http_11)s,
       additional_headers = %(additional_headers)s, sdk_version = %(sdk_version)s, last_seen_at = now()
 WHERE id = %(id)s
RETURNING id

-- name: driven_endpoints
-- what workers drive: every SDK endpoint deployment, its manifest, and the services it is
-- the latest deployment of (whose new invocations it takes)
SELECT d.id, d.uri, d.protocol_mode, d.min_protocol_version, d.max_protocol_version, d.use_http_11,
       d.additional_headers, d.manifest,
       ARRAY(SELECT s.name FROM {s}.service s WHERE s.deployment_id = d.id ORDER BY s.name) AS latest_of
  FROM {s}.deployment d
 WHERE d.uri IS NOT NULL
 ORDER BY d.created_at, d.id
