"""How a handler runs against its journal: replay, buffering, suspension and the attempt outcome."""
