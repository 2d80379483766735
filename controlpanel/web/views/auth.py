"""Sign-in: allauth's login page behind the site's own rate limits (RATE_LIMIT_LOGIN,
per client IP and per address; 503 when the limiter's cache is down)."""

from __future__ import annotations

from allauth.account.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlpanel.customer import ratelimit


class RateLimitedLoginView(LoginView):
    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if "login" not in request.POST and "username" in request.POST:
            # The sign-in form before allauth named the address `username`; scripts and
            # password managers that learned it keep working.
            data = request.POST.copy()
            data["login"] = request.POST["username"]
            # The stubs type POST as the immutable QueryDict Django builds; a view may
            # replace it with a mutable copy.
            request.POST = data  # type: ignore[assignment]
        try:
            wait = ratelimit.check(
                request, "login", "RATE_LIMIT_LOGIN", request.POST.get("login", "")
            )
        except ratelimit.LimiterUnavailable:
            response = render(
                request,
                "customer/message.html",
                {"title": "Temporarily unavailable", "text": "Please try again in a moment."},
                status=503,
            )
            response["Retry-After"] = str(ratelimit.UNAVAILABLE_RETRY_AFTER)
            return response
        if wait:
            response = render(
                request,
                "customer/message.html",
                {"title": "Too many sign-in attempts", "text": f"Try again in {wait} seconds."},
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)
