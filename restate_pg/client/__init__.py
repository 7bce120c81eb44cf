"""Starting and following invocations from code outside handlers.

`enqueue` / `enqueue_async` start an invocation in the application's own transaction;
`create_client` / `create_sync_client` give a client over HTTP (to an ingress) or over SQL.
"""

from restate_pg.client.base import RestateClient
from restate_pg.client.blocking import SyncRestateClient
from restate_pg.client.factory import create_client, create_sync_client
from restate_pg.client.handle import ClientError, HttpError, RestateClientSendHandle
from restate_pg.client.http import HttpClient
from restate_pg.client.sql import SqlClient
from restate_pg.client.transactional import enqueue, enqueue_async

__all__ = [
    "ClientError",
    "HttpError",
    "HttpClient",
    "RestateClient",
    "RestateClientSendHandle",
    "SqlClient",
    "SyncRestateClient",
    "create_client",
    "create_sync_client",
    "enqueue",
    "enqueue_async",
]
