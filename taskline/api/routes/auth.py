"""Tokens: the OAuth2 password flow, revocation (one token, or every token of a user), and
who the caller is."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from taskline.api.deps import AdminUser, AuthenticatorDep, BearerToken, CurrentUser, client_address
from taskline.api.errors import UnauthorizedError
from taskline.core.log_tags import tag_user
from taskline.core.records import USER_NAME

router = APIRouter(prefix="/auth", tags=["auth"])


class Me(BaseModel):
    """Who the credentials name, and what their role lets them do."""

    name: str
    role: str = Field(
        description="`admin`: reads and changes every task; `viewer`: reads every task, "
        "changes nothing (403); `user`: reads and changes their own."
    )


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post(
    "/token",
    response_model=Token,
    responses={
        401: {"description": "Wrong password"},
        429: {"description": "Too many failed sign-ins of this name or from this address"},
        503: {"description": "Too many password checks under way; retry shortly"},
    },
)
async def create_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    authenticator: AuthenticatorDep,
) -> Token:
    """Exchange a username and password for a bearer token."""
    user = await authenticator.login(form.username, form.password, client_address(request))
    if user is None:
        raise UnauthorizedError("wrong username or password")
    tag_user(user.name)
    return Token(access_token=await authenticator.issue(user), expires_in=authenticator.ttl)


@router.get("/me", response_model=Me, responses={401: {"description": "Not authenticated"}})
async def read_me(user: CurrentUser) -> Me:
    """Name the caller and their role (the dashboard hides what a viewer may not do)."""
    return Me(name=user.name, role=user.role.value)


@router.delete("/token", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    user: CurrentUser, token: BearerToken, authenticator: AuthenticatorDep
) -> Response:
    """Revoke the bearer token this request carries."""
    if token:
        await authenticator.revoke(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/users/{name}/tokens",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "Not an admin"}},
)
async def revoke_user_tokens(
    name: Annotated[str, Path(pattern=f"^{USER_NAME.pattern}$")],
    admin: AdminUser,
    authenticator: AuthenticatorDep,
) -> Response:
    """Revoke every bearer token of a user (admins only), e.g. after a password leaked."""
    await authenticator.revoke_all(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
