-- sys_service: the registered services
CREATE OR REPLACE VIEW {s}.sys_service AS
SELECT name, revision::bigint AS revision, public, ty, deployment_id
  FROM {s}.service;
