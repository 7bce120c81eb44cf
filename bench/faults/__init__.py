"""The fault-injection suite of issue 11: the load, then each fault class in turn (docs/faults.md)."""
