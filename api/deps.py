"""Dependency aliases: the app's shared clients, typed for handlers."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer

from api.auth import Authenticator, User
from api.errors import UnauthorizedError
from api.events import EventHub
from api.ledger import SerialLedger
from api.producer import Producer
from api.stats import CpuSampler
from api.store import TaskStore
from api.submit import Submitter
from worker.settings import Settings


async def _store(request: Request) -> TaskStore:
    return request.app.state.store


async def _producer(request: Request) -> Producer:
    return request.app.state.producer


async def _submitter(request: Request) -> Submitter:
    return request.app.state.submitter


async def _ledger(request: Request) -> SerialLedger:
    return request.app.state.ledger


async def _hub(request: Request) -> EventHub:
    return request.app.state.hub


async def _sampler(request: Request) -> CpuSampler:
    return request.app.state.sampler


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
_basic = HTTPBasic(auto_error=False)


async def _authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]


async def _current_user(
    authenticator: AuthenticatorDep,
    token: Annotated[str | None, Depends(_bearer)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> User:
    if token:
        user = await authenticator.resolve(token)
    elif basic:
        user = await authenticator.login(basic.username, basic.password)
    else:
        raise UnauthorizedError("not authenticated: send a bearer token or HTTP Basic")
    if user is None:
        raise UnauthorizedError("invalid, expired or revoked credentials")
    return user


CurrentUser = Annotated[User, Depends(_current_user)]
BearerToken = Annotated[str | None, Depends(_bearer)]
StoreDep = Annotated[TaskStore, Depends(_store)]
ProducerDep = Annotated[Producer, Depends(_producer)]
SubmitterDep = Annotated[Submitter, Depends(_submitter)]
LedgerDep = Annotated[SerialLedger, Depends(_ledger)]
HubDep = Annotated[EventHub, Depends(_hub)]
SamplerDep = Annotated[CpuSampler, Depends(_sampler)]
SettingsDep = Annotated[Settings, Depends(_settings)]
