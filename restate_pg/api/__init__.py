"""What users write: service definitions, contexts, errors, serdes and retry options."""
