"""Services the tests run, importable by worker subprocesses as `tests.apps.<module>:app`."""
