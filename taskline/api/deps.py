"""Dependency aliases: the app's shared clients, typed for handlers."""

import base64
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from taskline.api.addresses import ClientAddresses
from taskline.api.auth import Authenticator, Role, User
from taskline.api.errors import ForbiddenError, UnauthorizedError
from taskline.api.events import EventHub
from taskline.api.producer import Producer
from taskline.api.stats import CpuSampler
from taskline.api.store import TaskStore
from taskline.api.streams import Fence, StreamSlots
from taskline.api.submit import Submitter
from taskline.core.ledger import Ledger
from taskline.core.log_tags import tag_user
from taskline.core.settings import Settings


def _shared(name: str) -> Any:
    """A dependency handing a handler `app.state.<name>`, one of the app's shared clients
    (set up by the lifespan in api.main)."""

    async def shared(request: Request) -> Any:
        return getattr(request.app.state, name)

    shared.__name__ = f"_{name}"  # what it hands out, as tests/unit/test_hotpaths.py names it
    return Depends(shared)


_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


AuthenticatorDep = Annotated[Authenticator, _shared("authenticator")]


# Methods that change nothing: all a viewer may send.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The writes a viewer may send anyway, each about their own session alone: signing out
# (revoking the token the request carries). Signing in (POST /auth/token) takes no
# credentials, so it never comes here.
VIEWER_WRITES = frozenset({("DELETE", "/auth/token")})


def refuse_viewer_writes(request: Request, user: User) -> None:
    """A viewer's request that could change anything: ForbiddenError (403). Checked where the
    caller is resolved, so that every route, the hot paths and any route added later are
    covered without a dependency of their own; a task creation refuses a viewer again
    (api.submit), whatever the method of its route."""
    method = request.method
    if user.changes or method in READ_METHODS or (method, request.url.path) in VIEWER_WRITES:
        return
    raise ForbiddenError(f"{user.name} is a viewer: a viewer reads every task and changes nothing")


class Credentials(OAuth2PasswordBearer):
    """The caller, from a bearer token or HTTP Basic, as one dependency.

    One dependency instead of three (bearer, basic, authenticator): FastAPI solves every
    dependency on every request, and this one guards every route. The docs show the OAuth2
    password flow; HTTP Basic is read from the same Authorization header. A viewer is refused
    every request that could change something (refuse_viewer_writes).
    """

    async def __call__(self, request: Request) -> User:  # type: ignore[override]
        authenticator: Authenticator = request.app.state.authenticator
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and value:
            user = await authenticator.resolve(value)
            request.state.bearer = value
        elif scheme == "basic" and value:
            name, password = _basic_credentials(value)
            user = await authenticator.login(name, password, client_address(request))
        else:
            raise UnauthorizedError("not authenticated: send a bearer token or HTTP Basic")
        if user is None:
            raise UnauthorizedError("invalid, expired or revoked credentials")
        tag_user(user.name)
        refuse_viewer_writes(request, user)
        return user


def bearer_token(conn: HTTPConnection) -> str | None:
    """A bearer token: `?access_token=` (a browser's EventSource or WebSocket sends no
    headers), else the Authorization header's."""
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    header = value if scheme.lower() == "bearer" and value else None
    return conn.query_params.get("access_token") or header


async def token_user(conn: HTTPConnection, token: str) -> User:
    """The user of a bearer token, or UnauthorizedError."""
    authenticator: Authenticator = conn.app.state.authenticator
    user = await authenticator.resolve(token)
    if user is None:
        raise UnauthorizedError("invalid, expired or revoked credentials")
    conn.state.bearer = token
    tag_user(user.name)
    return user


def fence(conn: HTTPConnection, user: User) -> Fence:
    """The fence of a stream: the bearer token its request was authenticated with (the one
    it signed in with, whatever else it carries), or none for a password."""
    return Fence(conn.app.state.authenticator, getattr(conn.state, "bearer", None), user)


def client_address(conn: HTTPConnection) -> str:
    """Where the request comes from, as sign-in and serial-check throttling count it."""
    addresses: ClientAddresses = conn.app.state.addresses
    return addresses.of_connection(conn)


def _basic_credentials(value: str) -> tuple[str, str]:
    """Username and password of an HTTP Basic header value."""
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnauthorizedError("malformed HTTP Basic credentials") from exc
    name, colon, password = decoded.partition(":")
    if not colon:
        raise UnauthorizedError("malformed HTTP Basic credentials")
    return name, password


credentials = Credentials(
    tokenUrl="/auth/token",
    scheme_name="OAuth2PasswordBearer",
    description="A bearer token from POST /auth/token; HTTP Basic is accepted too.",
)

CurrentUser = Annotated[User, Depends(credentials)]


async def _admin(user: CurrentUser) -> User:
    """The caller, if an admin: what concerns every user is theirs alone."""
    if user.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may do this")
    return user


AdminUser = Annotated[User, Depends(_admin)]
BearerToken = Annotated[str | None, Depends(_bearer)]
StoreDep = Annotated[TaskStore, _shared("store")]
ProducerDep = Annotated[Producer, _shared("producer")]
SubmitterDep = Annotated[Submitter, _shared("submitter")]
LedgerDep = Annotated[Ledger, _shared("ledger")]
HubDep = Annotated[EventHub, _shared("hub")]
SamplerDep = Annotated[CpuSampler, _shared("sampler")]
SettingsDep = Annotated[Settings, _shared("settings")]
SlotsDep = Annotated[StreamSlots, _shared("slots")]
