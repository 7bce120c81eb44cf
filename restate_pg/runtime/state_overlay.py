"""`StateOverlay`: an object key's state as one attempt's own writes leave it.

The attempt reads the stored state at most once (or is handed it when it starts right after the
key's previous invocation); its writes are kept here on top of it, so that a `get` after a `set`
answers without a database read, and the whole state can be handed on when the attempt completes.
"""

from __future__ import annotations

import typing


class StateOverlay:
    def __init__(self, loaded: typing.Optional[typing.Dict[str, bytes]] = None) -> None:
        #: The key's stored state, once read (or handed over eagerly when the attempt began).
        self.loaded = loaded
        #: Names written by this attempt: their value, or None when cleared.
        self.written: typing.Dict[str, typing.Optional[bytes]] = {}
        #: Whether this attempt cleared all the state (what was stored no longer counts).
        self.cleared = False

    def set(self, name: str, value: typing.Optional[bytes]) -> None:
        self.written[name] = value

    def clear_all(self) -> None:
        self.written.clear()
        self.cleared = True

    def current(self, name: str) -> typing.Tuple[bool, typing.Optional[bytes]]:
        """The value of `name` if this attempt already knows it without a database read."""
        if name in self.written:
            return True, self.written[name]
        if self.cleared:
            return True, None
        if self.loaded is not None:
            return True, self.loaded.get(name)
        return False, None

    def keys(self, stored: typing.Mapping[str, bytes]) -> typing.List[str]:
        """The names that hold a value, given the stored state."""
        names = {n for n in stored if self.written.get(n, b"") is not None}
        names |= {n for n, v in self.written.items() if v is not None}
        return sorted(names)

    def known(self) -> typing.Optional[typing.Dict[str, bytes]]:
        """The key's whole state as this attempt's writes leave it, if the attempt knows all of it.

        Handed to the next invocation of the key when it starts here right after this one
        completes (the key passes directly between them, so nothing else can change it)."""
        if self.cleared:
            state: typing.Dict[str, bytes] = {}
        elif self.loaded is not None:
            state = dict(self.loaded)
        else:
            return None
        for name, value in self.written.items():
            if value is None:
                state.pop(name, None)
            else:
                state[name] = value
        return state
