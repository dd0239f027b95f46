"""Accounts: register, login, refresh, logout, me."""
from models.actions import accounts

from .base import ANYONE, SIGNED_IN, BaseHandler, endpoint
from .schemas.accounts import (AuthResultSchema, LoginSchema, MeUpdateSchema, RefreshSchema, RegisterSchema,
                               TokenPairSchema, UserSchema)

TAGS = ("auth",)


class RegisterHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Register a client or serviceman", body=RegisterSchema,
              response=AuthResultSchema(), status=201, errors=(400, 422), tags=TAGS, rate_limit="register",
              description="Servicemen also send category_ids, bio, years_of_experience and start "
                          "PENDING_APPROVAL: they are listed once an admin approves them.")
    async def post(self):
        def register_and_sign_in():
            user = accounts.register(self.config, **self.body)
            return {"user": user, **accounts.issue_token_pair(self.config, user)}

        await self.respond(await self.run(register_and_sign_in))


class LoginHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Sign in with email and password", body=LoginSchema,
              response=AuthResultSchema(), errors=(400, 401, 422), tags=TAGS, rate_limit="login")
    async def post(self):
        user, pair = await self.run(accounts.login, self.config, self.body["email"], self.body["password"])
        await self.respond({"user": user, **pair})


class RefreshHandler(BaseHandler):
    @endpoint(roles=ANYONE, summary="Rotate a refresh token", body=RefreshSchema, response=TokenPairSchema(),
              errors=(400, 401, 422), tags=TAGS, rate_limit="refresh",
              description="The old refresh token is revoked. Presenting a revoked one again is 401 "
                          "`token_reused` and signs out every session of that login.")
    async def post(self):
        await self.respond(await self.run(accounts.rotate_refresh, self.config, self.body["refresh"]))


class LogoutHandler(BaseHandler):
    @endpoint(roles=SIGNED_IN, summary="Revoke a refresh token", body=RefreshSchema, status=204,
              errors=(400, 401, 422), tags=TAGS)
    async def post(self):
        await self.run(accounts.logout, self.config, self.user, self.body["refresh"])
        await self.respond()


class MeHandler(BaseHandler):
    @endpoint(roles=SIGNED_IN, summary="The signed-in user", response=UserSchema(), errors=(401,), tags=TAGS)
    async def get(self):
        await self.respond(self.user)

    @endpoint(roles=SIGNED_IN, summary="Update own names, phone (and serviceman profile)", body=MeUpdateSchema,
              response=UserSchema(), errors=(400, 401, 422), tags=TAGS,
              description="Servicemen may also change bio, years_of_experience, category_ids, is_available.")
    async def patch(self):
        await self.respond(await self.run(accounts.update_me, self.user, **self.body))


default_handlers = [
    (r"/api/auth/register/", RegisterHandler),
    (r"/api/auth/login/", LoginHandler),
    (r"/api/auth/refresh/", RefreshHandler),
    (r"/api/auth/logout/", LogoutHandler),
    (r"/api/auth/me/", MeHandler),
]
