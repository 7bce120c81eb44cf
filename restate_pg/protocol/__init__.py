"""Restate's service protocol on the wire (versions 5 to 7): frames, messages, versions, ids.

What restate-pg needs to drive an SDK endpoint (TypeScript, Python, Go, Rust, Java...) and
nothing more: no I/O, no database. It imports only `core`, the standard library,
`google.protobuf` and (for request identity, an optional extra) `cryptography`; the invoker that
speaks HTTP to endpoints builds on it.
"""
