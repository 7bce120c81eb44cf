-- sys_deployment: the application versions that ran workers, with the services they registered
CREATE OR REPLACE VIEW {s}.sys_deployment AS
SELECT id, NULL::text AS ty, NULL::text AS endpoint, created_at,
       NULL::integer AS min_service_protocol_version, NULL::integer AS max_service_protocol_version,
       ARRAY(SELECT COALESCE(e->>'name', e#>>'{}') FROM jsonb_array_elements(services) e) AS services
  FROM {s}.deployment;
