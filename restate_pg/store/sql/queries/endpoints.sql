-- SDK endpoints registered over Restate's service protocol, as workers drive them.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: endpoint_deployments
-- the registered SDK endpoint deployments, with the services each is the latest deployment of
SELECT d.id, d.uri, d.protocol_mode, d.min_protocol_version, d.max_protocol_version, d.use_http_11,
       d.additional_headers, d.manifest,
       ARRAY(SELECT s.name FROM {s}.service s WHERE s.deployment_id = d.id ORDER BY s.name) AS latest_of
  FROM {s}.deployment d
 WHERE d.uri IS NOT NULL
 ORDER BY d.created_at, d.id
