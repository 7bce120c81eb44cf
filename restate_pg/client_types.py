"""restate-sdk's `restate.client_types`: the ingress client's types."""

from restate_pg.client.base import RestateClient
from restate_pg.client.handle import HttpError, RestateClientSendHandle
from restate_pg.client.scoped import RestateScopedClient

__all__ = ["HttpError", "RestateClient", "RestateClientSendHandle", "RestateScopedClient"]
