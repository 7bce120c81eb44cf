"""Test support: a real ingress over HTTP, worker processes, and the side-effect ledger."""
