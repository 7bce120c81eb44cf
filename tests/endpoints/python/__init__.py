"""The test services of tests/endpoints/typescript, written against the real restate-sdk."""
