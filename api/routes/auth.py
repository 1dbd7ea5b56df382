"""Tokens: the OAuth2 password flow, and revocation."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import AuthenticatorDep, BearerToken, CurrentUser
from api.errors import UnauthorizedError

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/token", response_model=Token, responses={401: {"description": "Wrong password"}})
async def create_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], authenticator: AuthenticatorDep
) -> Token:
    """Exchange a username and password for a bearer token."""
    user = await authenticator.login(form.username, form.password)
    if user is None:
        raise UnauthorizedError("wrong username or password")
    return Token(access_token=await authenticator.issue(user), expires_in=authenticator.ttl)


@router.delete("/token", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    user: CurrentUser, token: BearerToken, authenticator: AuthenticatorDep
) -> Response:
    """Revoke the bearer token this request carries."""
    if token:
        await authenticator.revoke(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
