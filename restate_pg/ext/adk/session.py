"""ADK sessions kept in the virtual object's state, one entry per session ("session_store::<id>").

The runner loads a session when a run starts and the plugin stores it when the run ends
(`flush_session_state`). What is stored passes through a journaled step first: ADK gives its
events random ids and timestamps, and a replayed run must store the session the first execution
stored, not a new version of it.
"""

from __future__ import annotations

import typing

from google.adk.events.event import Event
from google.adk.sessions import Session
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
from google.adk.sessions.state import State

from restate_pg.api.context import ObjectContext
from restate_pg.api.errors import TerminalError
from restate_pg.api.retry import RunOptions
from restate_pg.runtime.current import current_context

_PREFIX = "session_store::"


def _key(session_id: str) -> str:
    return _PREFIX + session_id


class RestateSessionService(BaseSessionService):
    """ADK's session service on the state of the virtual object whose handler runs the agent."""

    def ctx(self) -> ObjectContext:
        """The running handler's context, as a virtual object's."""
        return typing.cast(ObjectContext, current_context())

    async def create_session(self, *, app_name: str, user_id: str, state: typing.Optional[typing.Dict[str, typing.Any]] = None,
                             session_id: typing.Optional[str] = None) -> Session:
        """A new session (its id from `ctx.uuid()` if none is given: the same on a replay); a
        TerminalError if one with this id exists."""
        if session_id is None:
            session_id = str(self.ctx().uuid())
        if await self.has_session(session_id=session_id):
            raise TerminalError("Session with the given ID already exists.")
        session = Session(app_name=app_name, user_id=user_id, id=session_id, state=state or {})
        await self.flush_session_state(session)
        return session

    async def has_session(self, *, session_id: str) -> bool:
        return await self.ctx().get(_key(session_id), type_hint=Session) is not None

    async def get_session(self, *, app_name: str, user_id: str, session_id: str,
                          config: typing.Optional[GetSessionConfig] = None) -> typing.Optional[Session]:
        """The stored session, or an empty one of that id (a run may start a session by using it).
        `config` (recent events only) is not applied: the whole session is in one state entry."""
        stored = await self.ctx().get(_key(session_id), type_hint=Session)
        return stored or Session(app_name=app_name, user_id=user_id, id=session_id)

    async def list_sessions(self, *, app_name: str, user_id: typing.Optional[str] = None) -> ListSessionsResponse:
        """Every session stored under this object's key."""
        sessions = []
        for key in await self.ctx().state_keys():
            if key.startswith(_PREFIX):
                session = await self.ctx().get(key, type_hint=Session)
                if session is not None:
                    sessions.append(session)
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        self.ctx().clear(_key(session_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """ADK's in-memory bookkeeping; stored when the run ends, except a compaction (ADK compacts
        after the run's end, so the plugin's store has already happened)."""
        event = await super().append_event(session, event)
        if event.actions and event.actions.compaction:
            await self.flush_session_state(session)
        return event

    async def flush_session_state(self, session: Session) -> None:
        """Store `session` without its temporary state (`temp:` keys), through a journaled step."""
        stored = session.model_copy()
        stored.state = {key: value for key, value in session.state.items()
                        if not key.startswith(State.TEMP_PREFIX) and key != "restate_context"}
        recorded = await self.ctx().run_typed("store session", lambda: stored, RunOptions(type_hint=Session))
        self.ctx().set(_key(session.id), recorded)
