"""Accounts: register, login, refresh, logout, me; email verification, password reset and change."""

import logging

from models.actions import accounts, credentials

from .base import ANYONE, SIGNED_IN, BaseHandler, endpoint
from .schemas.accounts import (
    AcceptedSchema,
    AuthResultSchema,
    ChangePasswordSchema,
    EmailSchema,
    EmailVerifiedSchema,
    LoginSchema,
    MeUpdateSchema,
    PasswordResetConfirmSchema,
    RefreshSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
    VerifyEmailQuerySchema,
)

TAGS = ("auth",)
log = logging.getLogger("serviceman.auth")


class RegisterHandler(BaseHandler):
    @endpoint(
        operation_id="register",
        roles=ANYONE,
        summary="Register a client or serviceman",
        body=RegisterSchema,
        response=AuthResultSchema(),
        status=201,
        errors=(400, 422),
        tags=TAGS,
        rate_limit="register",
        description="Servicemen also send category_ids, bio, years_of_experience and start "
        "PENDING_APPROVAL: they are listed once an admin approves them. The address is sent a "
        "verification link (`email_verified` is false until it is opened); an unverified "
        "client can browse and book but not pay.",
    )
    async def post(self):
        user, pair = await self.run(accounts.sign_up, self.config, self.transport, **self.body)
        await self.respond({"user": user, **pair})


class LoginHandler(BaseHandler):
    @endpoint(
        operation_id="login",
        roles=ANYONE,
        summary="Sign in with email and password",
        body=LoginSchema,
        response=AuthResultSchema(),
        errors=(400, 401, 422),
        tags=TAGS,
        rate_limit="login",
    )
    async def post(self):
        user, pair = await self.run(accounts.login, self.config, self.body["email"], self.body["password"])
        await self.respond({"user": user, **pair})


class RefreshHandler(BaseHandler):
    @endpoint(
        operation_id="refreshToken",
        roles=ANYONE,
        summary="Rotate a refresh token",
        body=RefreshSchema,
        response=TokenPairSchema(),
        errors=(400, 401, 422),
        tags=TAGS,
        rate_limit="refresh",
        description="The old refresh token is revoked. Presenting a revoked one again is 401 "
        "`token_reused` and signs out every session of that login.",
    )
    async def post(self):
        await self.respond(await self.run(accounts.rotate_refresh, self.config, self.body["refresh"]))


class LogoutHandler(BaseHandler):
    @endpoint(
        operation_id="logout",
        roles=SIGNED_IN,
        summary="Revoke a refresh token",
        body=RefreshSchema,
        status=204,
        errors=(400, 401, 422),
        tags=TAGS,
    )
    async def post(self):
        await self.run(accounts.logout, self.config, self.user, self.body["refresh"])
        await self.respond()


class MeHandler(BaseHandler):
    @endpoint(
        operation_id="getMe",
        roles=SIGNED_IN,
        summary="The signed-in user",
        response=UserSchema(),
        errors=(401,),
        tags=TAGS,
    )
    async def get(self):
        await self.respond(self.user)

    @endpoint(
        operation_id="updateMe",
        roles=SIGNED_IN,
        summary="Update own names, phone (and serviceman profile)",
        body=MeUpdateSchema,
        response=UserSchema(),
        errors=(400, 401, 403, 422),
        tags=TAGS,
        description="Servicemen may also change bio, years_of_experience, category_ids, is_available. A "
        "suspended serviceman changes nothing (403 `account_suspended`); one waiting for "
        "approval may edit its application.",
    )
    async def patch(self):
        await self.respond(await self.run(accounts.update_me, self.transport, self.user, **self.body))


# Answered whatever the address: whether it has an account must not show (item: no account oracle).
EMAIL_SENT = {
    "detail": "If an account uses this address, we have sent it an email with a link. "
    "It may take a few minutes to arrive."
}
TOKEN_ERRORS = (
    "A bad link is 422 with code `token_invalid` (unknown, altered, or made for something else), "
    "`token_used` or `token_expired` (a newer reset link makes older ones expire)."
)


def redacted_summary(handler):
    """The access log line without the query: it holds a live link token."""
    request = handler.request
    return f"{request.method} {request.path} ({request.remote_ip})"


class VerifyEmailHandler(BaseHandler):
    def _request_summary(self):
        return redacted_summary(self)

    @endpoint(
        operation_id="getVerifyEmail",
        roles=ANYONE,
        summary="Confirm an email address (the emailed link)",
        query=VerifyEmailQuerySchema,
        response=EmailVerifiedSchema(),
        errors=(422,),
        tags=TAGS,
        description="The link in the verification email opens this directly; it answers JSON. Each link "
        "works once, for EMAIL_VERIFICATION_HOURS. " + TOKEN_ERRORS,
    )
    async def get(self):
        await self.run(credentials.verify_email, self.query["token"])
        await self.respond(
            {"email_verified": True, "detail": "Your email address is confirmed. You can now pay for bookings."}
        )


class EmailLinkHandler(BaseHandler):
    async def answer_then(self, queue_email, email):
        """Answer first, then queue the job: the answer is sent before any work that could differ
        between addresses (even the job's thread competing for the interpreter) can delay it."""
        await self.respond(EMAIL_SENT)
        try:
            await self.run(queue_email, self.transport, email)
        except Exception:
            log.exception("could not queue an account email")


class ResendVerificationHandler(EmailLinkHandler):
    @endpoint(
        operation_id="postResendVerification",
        roles=ANYONE,
        summary="Email a new verification link",
        body=EmailSchema,
        response=AcceptedSchema(),
        status=202,
        errors=(400, 422),
        tags=TAGS,
        rate_limit="email",
        description="The same answer, as fast, whether the address has an account, is already verified "
        "or is unknown: the lookup and the email happen after the answer.",
    )
    async def post(self):
        await self.answer_then(credentials.request_verification_email, self.body["email"])


class PasswordResetHandler(EmailLinkHandler):
    @endpoint(
        operation_id="postPasswordReset",
        roles=ANYONE,
        summary="Email a password reset link",
        body=EmailSchema,
        response=AcceptedSchema(),
        status=202,
        errors=(400, 422),
        tags=TAGS,
        rate_limit="email",
        description="The same answer, as fast, whether or not the address has an account: the lookup and "
        "the email happen after the answer. The link opens a page to choose a new password; "
        "it works once, for PASSWORD_RESET_MINUTES, and only the newest one works.",
    )
    async def post(self):
        await self.answer_then(credentials.request_password_reset, self.body["email"])


class PasswordResetConfirmHandler(BaseHandler):
    @endpoint(
        operation_id="postPasswordResetConfirm",
        roles=ANYONE,
        summary="Set a new password with a reset token",
        body=PasswordResetConfirmSchema,
        status=204,
        errors=(400, 422),
        tags=TAGS,
        description="Every session of the account ends at once: refresh tokens are revoked, access tokens "
        "already issued get 401 `session_ended`, open websockets close with code 4003. Sign in "
        "with the new password. " + TOKEN_ERRORS,
    )
    async def post(self):
        await self.run(
            credentials.confirm_password_reset, self.config, self.transport, self.body["token"], self.body["password"]
        )
        await self.respond()


class ChangePasswordHandler(BaseHandler):
    @endpoint(
        operation_id="postChangePassword",
        roles=SIGNED_IN,
        summary="Change the password",
        body=ChangePasswordSchema,
        response=TokenPairSchema(),
        errors=(400, 401, 422),
        tags=TAGS,
        rate_limit="login",
        description="Every session of the account ends at once, this one included: refresh tokens are "
        "revoked, access tokens already issued get 401 `session_ended`, open websockets close "
        "with code 4003. The answer is a fresh `{access, refresh}` pair so the client that "
        "changed the password stays signed in. A wrong current password is 422 "
        "`invalid_current_password` (and changes nothing).",
        idempotency=None,
    )
    async def post(self):
        await self.respond(
            await self.run(
                accounts.change_password,
                self.config,
                self.transport,
                self.user,
                self.body["current_password"],
                self.body["new_password"],
            )
        )


default_handlers = [
    (r"/api/auth/register/", RegisterHandler),
    (r"/api/auth/login/", LoginHandler),
    (r"/api/auth/refresh/", RefreshHandler),
    (r"/api/auth/logout/", LogoutHandler),
    (r"/api/auth/me/", MeHandler),
    (r"/api/auth/verify-email/", VerifyEmailHandler),
    (r"/api/auth/resend-verification/", ResendVerificationHandler),
    (r"/api/auth/password-reset/", PasswordResetHandler),
    (r"/api/auth/password-reset/confirm/", PasswordResetConfirmHandler),
    (r"/api/auth/change-password/", ChangePasswordHandler),
]
