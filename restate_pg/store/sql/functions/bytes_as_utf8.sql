-- bytes_as_utf8: a stored value as text when it is valid UTF-8 (JSON, strings), else NULL
-- (parallel unsafe, the default: its EXCEPTION block starts a subtransaction)
CREATE OR REPLACE FUNCTION {s}.bytes_as_utf8(p_value bytea)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN convert_from(p_value, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN NULL;
END
$$;
