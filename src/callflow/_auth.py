"""Inbound authentication of the callbacks the Microsoft Graph calls service sends.

Theory of operation
-------------------
The calls service signs every callback POST with a JWT in ``Authorization: Bearer <jwt>``.
:class:`TokenValidator` checks it in the order that lets each failure be named:

1. The header must be ``Bearer <token>``, and the token's (unverified) header must name an
   RSA algorithm (RS256, RS384, RS512) and a key id (``kid``). Nothing else is accepted, so a
   token with ``alg: none``, or one HMAC-signed with the public key as the secret, is refused
   before any key is looked at.
2. The key comes from the JWKS whose URL is ``jwks_uri`` in the service's OpenID configuration
   document. The signature, the issuer (one of ``issuers``) and the presence of ``exp``,
   ``iss`` and ``aud`` are checked by PyJWT; ``exp``, ``nbf`` and ``iat`` are checked here,
   against the injected clock, with ``leeway`` seconds of tolerance.
3. The tenant claim (``tid``) must be present: it says which tenant the call belongs to.
   (Microsoft's .NET samples read ``http://schemas.microsoft.com/identity/claims/tenantid``,
   the name .NET's token handler gives to ``tid``.)
4. Last, the audience must be ``app_id`` (or one of them), and the tenant one of
   ``tenants`` when that allow-list is given. Every earlier failure is a 401; a token that
   passes them all but names another audience, or a tenant not allowed, is authentic, only
   not meant for this application: 403.

Keys are fetched together with the OpenID document, as one snapshot kept for ``cache_ttl``
seconds. One fetch runs at a time, behind an :class:`anyio.Lock`. Each fetch bumps a
generation number: a task that read the generation, then waited for the lock while another
task fetched, takes that fetch's outcome (keys or failure) instead of fetching again. So any
number of concurrent validations on a cold cache cost one fetch. A ``kid`` missing from a
fresh snapshot may mean the service rotated its keys, so it triggers a refetch, but at most
one per ``refresh_interval``: a flood of forged key ids cannot hammer the key endpoint.

A failed fetch is remembered: no fetch is tried again until a back-off has passed (1 s,
doubling each failure in a row up to ``max_backoff``), so an outage of the key endpoint
costs one fetch per back-off, not one per callback, and no callback waits for a fetch
that is not due. Meanwhile, and while a fetch fails, the keys last fetched keep verifying
for up to ``max_stale`` seconds past their ``cache_ttl`` (as the Bot Framework SDKs do);
after that, or with no keys ever fetched, a callback is a 401 naming the outage.

A claim checked against a number (``exp``, ``nbf``, ``iat``) must be a finite number of
plausible size: ``exp=10**400`` is a 401, not an ``OverflowError``.

Error messages say what is wrong with a token but never quote it, nor any value taken from
it; PyJWT's own errors are not chained (``from None``) for the same reason.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
import httpx

from ._exceptions import WebhookAuthError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = ["TokenValidator"]

DEFAULT_OPENID_CONFIG_URL: Final = "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration"
DEFAULT_ISSUERS: Final = ("https://api.botframework.com", "https://graph.microsoft.com")

_ALGORITHMS: Final = ("RS256", "RS384", "RS512")
_TENANT_CLAIM: Final = "tid"
_INSTALL_HINT: Final = "TokenValidator needs PyJWT with cryptography: pip install 'callflow[jwt]'"
#: The largest magnitude a time claim may have: beyond it a float loses whole seconds.
_MAX_TIME: Final = 2**53
_FIRST_BACKOFF: Final = 1.0

logger = logging.getLogger("callflow.webhook")


@attrs.frozen
class _SigningKey:
    """One RSA public key from the JWKS, and the algorithms a token signed with it may use."""

    public_key: RSAPublicKey
    algorithms: tuple[str, ...]


@attrs.frozen
class _KeySnapshot:
    """The signing keys by ``kid``, and when (by the validator's clock) they were fetched."""

    keys: Mapping[str, _SigningKey]
    fetched_at: float


class TokenValidator:
    """Validates the bearer token the calls service puts on each callback it sends.

    Works under asyncio and trio. One validator per application is meant to live as long as
    the web server: it caches the service's signing keys.

    Args:
        app_id: the application (client) id of the bot; tokens must have it as audience.
            Several ids (a collection) accept a token meant for any of them.
        openid_config_url: the service's OpenID configuration document, whose ``jwks_uri``
            names the signing keys.
        http_client: the client that fetches the document and keys. If omitted, the
            validator makes its own, and :meth:`aclose` closes it.
        issuers: the accepted ``iss`` values (a single string counts as one issuer).
        leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
        cache_ttl: seconds the document and keys are kept before being fetched again.
        refresh_interval: the least number of seconds between two refetches caused by a
            token whose ``kid`` is not among the cached keys.
        clock: the current Unix time in seconds; it judges token lifetimes and cache ages.
        tenants: when given, the only tenant ids (``tid``) accepted; a token from any
            other tenant is refused with 403.
        max_stale: seconds past ``cache_ttl`` for which the keys last fetched still
            verify while fetching new ones fails.
        max_backoff: the longest wait, in seconds, between two fetches after failures.

    Raises:
        ValueError: for an empty ``app_id``, ``issuers`` or ``tenants``, or a negative
            duration.
        ImportError: if PyJWT or cryptography is missing (``pip install 'callflow[jwt]'``).

    """

    def __init__(
        self,
        app_id: str | Collection[str],
        *,
        openid_config_url: str = DEFAULT_OPENID_CONFIG_URL,
        http_client: httpx.AsyncClient | None = None,
        issuers: Collection[str] = DEFAULT_ISSUERS,
        leeway: float = 300.0,
        cache_ttl: float = 6 * 3600,
        refresh_interval: float = 300.0,
        clock: Callable[[], float] = time.time,
        tenants: Collection[str] | None = None,
        max_stale: float = 24 * 3600,
        max_backoff: float = 60.0,
    ) -> None:
        _require_pyjwt()
        app_ids = (app_id,) if isinstance(app_id, str) else tuple(app_id)
        if not app_ids or not all(isinstance(a, str) and a for a in app_ids):
            raise ValueError("app_id must not be empty")
        if isinstance(tenants, str):
            tenants = (tenants,)
        if tenants is not None and not tenants:
            raise ValueError("tenants, when given, must name at least one tenant id")
        if isinstance(issuers, str):
            issuers = (issuers,)
        if not issuers:
            raise ValueError("issuers must name at least one issuer")
        for name, value in (
            ("leeway", leeway),
            ("cache_ttl", cache_ttl),
            ("refresh_interval", refresh_interval),
            ("max_stale", max_stale),
            ("max_backoff", max_backoff),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be a non-negative number of seconds, not {value}")

        self._app_ids = app_ids
        self._app_id = app_ids[0] if len(app_ids) == 1 else ", ".join(app_ids)
        self._tenants = None if tenants is None else frozenset(tenants)
        self._max_stale = max_stale
        self._max_backoff = max_backoff
        self._openid_config_url = openid_config_url
        self._issuers = tuple(issuers)
        self._leeway = leeway
        self._cache_ttl = cache_ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._client = http_client
        self._owns_client = http_client is None

        self._lock = anyio.Lock()
        self._snapshot: _KeySnapshot | None = None
        self._generation = 0
        self._failure: WebhookAuthError | None = None
        self._last_attempt = -math.inf
        self._failures = 0  # fetches failed in a row
        self._retry_at = -math.inf  # no fetch before this, after a failure
        #: How many times the OpenID document was fetched (or tried).
        self.fetches = 0

    def __repr__(self) -> str:
        return (
            f"TokenValidator(app_id={self._app_id!r}, "
            f"openid_config_url={self._openid_config_url!r})"
        )

    async def validate(self, authorization: str | None) -> Mapping[str, Any]:
        """Check a callback's ``Authorization`` header and return the token's claims.

        Args:
            authorization: the header's value, or ``None`` if the request had none.

        Returns:
            The verified claims; ``claims["tid"]`` is the tenant the callback concerns.

        Raises:
            WebhookAuthError: with ``status_code`` 401 if the header is missing, is not a
                bearer token, or the token is malformed, badly signed, signed with an unknown
                key, from an untrusted issuer, expired, not yet valid or without a tenant
                claim, or if the signing keys could not be fetched; with 403 if the token is
                valid but meant for another application.

        """
        import jwt

        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise WebhookAuthError("the bearer token is not a well-formed JWT") from None
        if header.get("alg") not in _ALGORITHMS:
            raise WebhookAuthError(f"the token is not signed with {', '.join(_ALGORITHMS)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise WebhookAuthError("the token's header has no key id (kid)")

        key = await self._signing_key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=key.algorithms,
                issuer=self._issuers,
                options={
                    # Lifetimes are judged below, by the injected clock; the audience last,
                    # because a wrong one is a 403 only once everything else holds.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "require": ["exp", "iss", "aud"],
                },
            )
        except jwt.InvalidTokenError as exc:
            raise WebhookAuthError(self._explain(exc)) from None

        self._check_lifetime(claims)
        tenant = claims.get(_TENANT_CLAIM)
        if not isinstance(tenant, str) or not tenant:
            raise WebhookAuthError(f"the token has no tenant id claim ({_TENANT_CLAIM!r})")
        if not any(_names_audience(claims["aud"], a) for a in self._app_ids):
            raise WebhookAuthError(
                f"the token is meant for another application, not {self._app_id!r}",
                status_code=403,
            )
        if self._tenants is not None and tenant not in self._tenants:
            raise WebhookAuthError(
                "the token's tenant is not one of the tenants this webhook serves",
                status_code=403,
            )
        return claims

    async def aclose(self) -> None:
        """Close the HTTP client, if the validator made it; an injected one is left open."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _explain(self, exc: Exception) -> str:
        """Say what a PyJWT error means, without quoting the token."""
        import jwt

        if isinstance(exc, jwt.InvalidSignatureError):
            return "the token's signature does not verify"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"the token's issuer is not one of {', '.join(self._issuers)}"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"the token has no {exc.claim!r} claim"
        if isinstance(exc, jwt.InvalidAlgorithmError):
            return "the token's algorithm does not match its signing key"
        return "the bearer token is not a well-formed JWT"

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        for claim in ("exp", "nbf", "iat"):
            value = claims.get(claim)
            if value is None:
                continue
            # NaN compares false with everything, and Infinity never expires: both refused.
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise WebhookAuthError(f"the token's {claim!r} claim is not a number")
            if isinstance(value, int) and abs(value) > _MAX_TIME:
                raise WebhookAuthError(f"the token's {claim!r} claim is not a plausible time")
            if not math.isfinite(value):
                raise WebhookAuthError(f"the token's {claim!r} claim is not a finite number")
        if claims["exp"] <= now - self._leeway:
            raise WebhookAuthError("the token has expired")
        for claim in ("nbf", "iat"):
            if claims.get(claim, -math.inf) > now + self._leeway:
                raise WebhookAuthError(f"the token is not yet valid ({claim!r} is in the future)")

    async def _signing_key(self, kid: str) -> _SigningKey:
        """The key with this id: from the cache, or fetched if the cache is stale or lacks it."""
        generation = self._generation
        snapshot = self._snapshot
        if snapshot is None or self._clock() - snapshot.fetched_at >= self._cache_ttl:
            snapshot = await self._fresh_or_stale(generation)
            generation = self._generation
        key = snapshot.keys.get(kid)
        if key is None and self._clock() - self._last_attempt >= self._refresh_interval:
            # An unknown kid may be a rotated key: look again, but not too often.
            snapshot = await self._fresh_or_stale(generation)
            key = snapshot.keys.get(kid)
        if key is None:
            raise WebhookAuthError("the token is signed with an unknown key id")
        return key

    async def _fresh_or_stale(self, seen_generation: int) -> _KeySnapshot:
        """A fresh snapshot, or while fetching fails the last one, up to ``max_stale`` old."""
        try:
            return await self._refresh(seen_generation)
        except WebhookAuthError:
            stale = self._snapshot
            if stale is None or self._clock() - stale.fetched_at >= (
                self._cache_ttl + self._max_stale
            ):
                raise
            logger.warning(
                "callflow webhook: the signing keys could not be refreshed; "
                "using the keys fetched %.0f s ago",
                self._clock() - stale.fetched_at,
            )
            return stale

    async def _refresh(self, seen_generation: int) -> _KeySnapshot:
        """Fetch a new snapshot, unless a fetch finished since ``seen_generation`` was read.

        After a failure no fetch is tried before the back-off has passed: the failure is
        raised again at once.
        """
        async with self._lock:
            if self._generation == seen_generation and self._clock() >= self._retry_at:
                self._last_attempt = self._clock()
                self.fetches += 1
                try:
                    self._snapshot = await self._fetch(fetched_at=self._last_attempt)
                    self._failure = None
                    self._failures = 0
                    self._retry_at = -math.inf
                except WebhookAuthError as exc:
                    self._failure = exc
                    self._failures += 1
                    backoff = _FIRST_BACKOFF * 2 ** min(self._failures - 1, 30)
                    self._retry_at = self._clock() + min(backoff, self._max_backoff)
                # Not bumped if the fetch was cancelled: a waiter then fetches in its place.
                self._generation += 1
            if self._failure is not None:
                raise WebhookAuthError(str(self._failure)) from self._failure.__cause__
            assert self._snapshot is not None
            return self._snapshot

    async def _fetch(self, *, fetched_at: float) -> _KeySnapshot:
        document = await self._get_json(self._openid_config_url)
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise _keys_unavailable(f"{self._openid_config_url} has no 'jwks_uri'")
        keys = _signing_keys(await self._get_json(jwks_uri))
        if not keys:
            raise _keys_unavailable(f"{jwks_uri} holds no RSA signing key")
        return _KeySnapshot(keys=keys, fetched_at=fetched_at)

    async def _get_json(self, url: str) -> object:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True)
        try:
            response = await self._client.get(url)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _keys_unavailable(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise _keys_unavailable(f"GET {url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise _keys_unavailable(f"GET {url} did not answer JSON") from exc


def _require_pyjwt() -> None:
    try:
        import jwt.algorithms
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    if not jwt.algorithms.has_crypto:
        raise ImportError(_INSTALL_HINT)


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise WebhookAuthError("the request has no Authorization header")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise WebhookAuthError("the Authorization header is not 'Bearer <token>'")
    return parts[1]


def _signing_keys(jwks: object) -> dict[str, _SigningKey]:
    """The usable RSA signature keys of a JWKS, by ``kid``; anything else is skipped."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    keys: dict[str, _SigningKey] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        # A key that declares its algorithm may verify only that one.
        algorithms = tuple(a for a in _ALGORITHMS if entry.get("alg", a) == a)
        try:
            public_key = jwt.PyJWK(entry, algorithm="RS256").key
        except jwt.PyJWTError:
            continue
        if algorithms and isinstance(public_key, RSAPublicKey):
            keys[kid] = _SigningKey(public_key=public_key, algorithms=algorithms)
    return keys


def _names_audience(aud: object, app_id: str) -> bool:
    if isinstance(aud, str):
        return aud == app_id
    return isinstance(aud, list) and app_id in aud


def _keys_unavailable(reason: str) -> WebhookAuthError:
    return WebhookAuthError(f"the signing keys could not be fetched: {reason}")
