"""TokenValidator: inbound callbacks are accepted only with a valid token from the service.

The OpenID document and the JWKS are served by a :class:`KeyService` through
``httpx.MockTransport``; it counts the requests it sees. Every async test runs on asyncio
and on trio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from callflow._auth import TokenValidator
from callflow._exceptions import WebhookAuthError

pytestmark = pytest.mark.anyio

APP_ID = "5ba7a1d2-5e3a-4f1b-9c1e-0a1b2c3d4e5f"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CONFIG_URL = "https://keys.example/v1/.well-known/OpenIdConfiguration"
JWKS_URL = "https://keys.example/v1/keys"
NOW = 1_750_000_000.0
REFRESH_INTERVAL = 300.0


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# Generated once: RSA key generation is slow, and no test changes a key.
KEY = _new_key()
OTHER_KEY = _new_key()


def jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def claims(**changes: Any) -> dict[str, Any]:
    """Claims the calls service would send; a change to ``None`` removes the claim."""
    base: dict[str, Any] = {
        "iss": "https://graph.microsoft.com",
        "aud": APP_ID,
        "tid": TENANT_ID,
        "iat": int(NOW) - 60,
        "nbf": int(NOW) - 60,
        "exp": int(NOW) + 3600,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def token(
    *, key: rsa.RSAPrivateKey = KEY, kid: str = "key-1", alg: str = "RS256", **changes: Any
) -> str:
    return jwt.encode(claims(**changes), key, algorithm=alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], *, secret: bytes | None) -> str:
    """A token PyJWT refuses to make: unsigned, or HMAC-signed with ``secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(value: str) -> str:
    return f"Bearer {value}"


class KeyService:
    """The calls service's key endpoints: the OpenID document and the JWKS."""

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        self.keys = keys
        self.requests: Counter[str] = Counter()
        self.status = 200
        self.delay = 0.0
        self.declared_alg: str | None = None

    def jwks(self) -> dict[str, Any]:
        declared = {"alg": self.declared_alg} if self.declared_alg else {}
        return {"keys": [{**jwk(kid, key), **declared} for kid, key in self.keys.items()]}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests[url] += 1
        if self.delay:
            await anyio.sleep(self.delay)
        if self.status != 200:
            return httpx.Response(self.status)
        if url == CONFIG_URL:
            return httpx.Response(
                200, json={"issuer": "https://api.botframework.com", "jwks_uri": JWKS_URL}
            )
        if url == JWKS_URL:
            return httpx.Response(200, json=self.jwks())
        return httpx.Response(404)

    def fetches(self) -> tuple[int, int]:
        """How often each document was fetched: (OpenID document, JWKS)."""
        return self.requests[CONFIG_URL], self.requests[JWKS_URL]


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service() -> KeyService:
    return KeyService({"key-1": KEY})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(service: KeyService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(service.handle)) as client:
        yield client


@pytest.fixture
def validator(client: httpx.AsyncClient, clock: FakeClock) -> TokenValidator:
    return TokenValidator(
        APP_ID,
        openid_config_url=CONFIG_URL,
        http_client=client,
        refresh_interval=REFRESH_INTERVAL,
        clock=clock,
    )


async def refused(validator: TokenValidator, authorization: str | None) -> WebhookAuthError:
    with pytest.raises(WebhookAuthError) as caught:
        await validator.validate(authorization)
    return caught.value


# --- what is accepted ----------------------------------------------------------------------


async def test_a_valid_token_returns_its_claims(validator: TokenValidator) -> None:
    assert claims() == await validator.validate(bearer(token()))


@pytest.mark.parametrize("issuer", ["https://graph.microsoft.com", "https://api.botframework.com"])
async def test_either_issuer_of_the_service_is_accepted(
    validator: TokenValidator, issuer: str
) -> None:
    assert issuer == (await validator.validate(bearer(token(iss=issuer))))["iss"]


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
async def test_every_rsa_algorithm_is_accepted(validator: TokenValidator, alg: str) -> None:
    assert (await validator.validate(bearer(token(alg=alg))))["tid"] == TENANT_ID


async def test_the_bearer_scheme_is_case_insensitive(validator: TokenValidator) -> None:
    assert (await validator.validate(f"bearer {token()}"))["tid"] == TENANT_ID


async def test_an_audience_list_naming_the_app_is_accepted(validator: TokenValidator) -> None:
    assert (await validator.validate(bearer(token(aud=["other", APP_ID]))))["tid"] == TENANT_ID


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": int(NOW) - 299}, id="expired-within-leeway"),
        pytest.param({"nbf": int(NOW) + 299}, id="nbf-within-leeway"),
        pytest.param({"iat": int(NOW) + 299}, id="iat-within-leeway"),
        pytest.param({"nbf": None, "iat": None}, id="no-nbf-no-iat"),
    ],
)
async def test_lifetimes_are_judged_with_leeway(
    validator: TokenValidator, changes: dict[str, Any]
) -> None:
    assert (await validator.validate(bearer(token(**changes))))["tid"] == TENANT_ID


# --- what is refused -----------------------------------------------------------------------


async def test_a_token_for_another_application_is_forbidden(validator: TokenValidator) -> None:
    forged = token(aud="some-other-app")

    error = await refused(validator, bearer(forged))

    assert error.status_code == 403
    assert "another application" in str(error)
    assert forged not in str(error)


def _pem_public_key() -> bytes:
    return KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tampered() -> str:
    """A valid token whose payload was swapped for another tenant's."""
    header, _, signature = token().split(".")
    _, payload, _ = token(tid="another-tenant").split(".")
    return f"{header}.{payload}.{signature}"


UNAUTHORIZED: list[Any] = [
    pytest.param(lambda: None, "no Authorization header", id="missing-header"),
    pytest.param(lambda: "", "no Authorization header", id="empty-header"),
    pytest.param(lambda: "Basic xyz", "not 'Bearer <token>'", id="basic-scheme"),
    pytest.param(lambda: token(), "not 'Bearer <token>'", id="token-without-scheme"),
    pytest.param(lambda: "Bearer", "not 'Bearer <token>'", id="bearer-without-token"),
    pytest.param(lambda: bearer("not.a.jwt"), "not a well-formed JWT", id="garbage"),
    pytest.param(lambda: bearer(token(iss="https://evil.example")), "issuer", id="wrong-issuer"),
    pytest.param(lambda: bearer(token(iss=None)), "'iss' claim", id="no-issuer"),
    pytest.param(lambda: bearer(token(exp=int(NOW) - 301)), "expired", id="expired"),
    pytest.param(lambda: bearer(token(nbf=int(NOW) + 301)), "not yet valid", id="not-yet-valid"),
    pytest.param(lambda: bearer(token(iat=int(NOW) + 301)), "not yet valid", id="issued-later"),
    pytest.param(lambda: bearer(token(exp=None)), "'exp' claim", id="no-expiry"),
    pytest.param(lambda: bearer(token(exp="tomorrow")), "not a number", id="exp-not-a-number"),
    pytest.param(lambda: bearer(token(exp=math.inf)), "not a finite", id="exp-infinite"),
    pytest.param(lambda: bearer(token(exp=math.nan)), "not a finite", id="exp-nan"),
    pytest.param(lambda: bearer(token(aud=None)), "'aud' claim", id="no-audience"),
    pytest.param(lambda: bearer(token(tid=None)), "tenant id", id="no-tenant"),
    pytest.param(lambda: bearer(token(tid="")), "tenant id", id="empty-tenant"),
    pytest.param(lambda: bearer(token(kid="key-9")), "unknown key id", id="unknown-kid"),
    pytest.param(lambda: bearer(token(key=OTHER_KEY)), "signature", id="signed-by-another-key"),
    pytest.param(lambda: bearer(tampered()), "signature", id="tampered-payload"),
    pytest.param(
        lambda: bearer(jwt.encode(claims(), KEY, algorithm="RS256")), "no key id", id="no-kid"
    ),
    pytest.param(
        lambda: bearer(hand_made_token({"alg": "none", "kid": "key-1"}, secret=None)),
        "not signed with RS256",
        id="alg-none",
    ),
    pytest.param(
        lambda: bearer(hand_made_token({"alg": "HS256", "kid": "key-1"}, secret=_pem_public_key())),
        "not signed with RS256",
        id="hs256-with-public-key-as-secret",
    ),
]


@pytest.mark.parametrize(("make_header", "reason"), UNAUTHORIZED)
async def test_an_invalid_token_is_unauthorized(
    validator: TokenValidator, make_header: Callable[[], str | None], reason: str
) -> None:
    authorization = make_header()

    error = await refused(validator, authorization)

    assert error.status_code == 401
    assert reason in str(error)
    if authorization and authorization != "Bearer":
        assert authorization.split()[-1] not in str(error)


async def test_a_wrong_issuer_is_unauthorized_even_with_a_wrong_audience(
    validator: TokenValidator,
) -> None:
    error = await refused(validator, bearer(token(iss="https://evil.example", aud="other")))

    assert error.status_code == 401


async def test_a_missing_tenant_is_unauthorized_even_with_a_wrong_audience(
    validator: TokenValidator,
) -> None:
    error = await refused(validator, bearer(token(tid=None, aud="other")))

    assert error.status_code == 401


async def test_a_key_declaring_its_algorithm_refuses_tokens_in_another(
    service: KeyService, validator: TokenValidator
) -> None:
    service.declared_alg = "RS256"

    error = await refused(validator, bearer(token(alg="RS512")))

    assert error.status_code == 401
    assert "algorithm does not match" in str(error)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    authorization=st.one_of(
        st.text(),
        st.text().map(bearer),
        st.lists(st.binary().map(_b64), min_size=1, max_size=4).map(".".join).map(bearer),
    )
)
async def test_any_malformed_header_is_unauthorized(
    validator: TokenValidator, authorization: str
) -> None:
    error = await refused(validator, authorization)

    assert error.status_code == 401


# --- fetching and caching the keys ---------------------------------------------------------


async def test_two_validations_fetch_each_document_once(
    service: KeyService, validator: TokenValidator
) -> None:
    await validator.validate(bearer(token()))
    await validator.validate(bearer(token()))

    assert service.fetches() == (1, 1)


async def test_the_keys_are_fetched_again_after_cache_ttl(
    service: KeyService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = TokenValidator(
        APP_ID, openid_config_url=CONFIG_URL, http_client=client, cache_ttl=3600, clock=clock
    )
    await validator.validate(bearer(token()))

    clock.now += 3600
    await validator.validate(bearer(token(exp=int(clock.now) + 60)))

    assert service.fetches() == (2, 2)


async def test_concurrent_validations_on_a_cold_cache_share_one_fetch(
    service: KeyService, validator: TokenValidator
) -> None:
    service.delay = 0.05
    results: list[str] = []

    async def validate() -> None:
        results.append((await validator.validate(bearer(token())))["tid"])

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(validate)

    assert results == [TENANT_ID] * 20
    assert service.fetches() == (1, 1)


async def test_concurrent_forged_key_ids_share_one_refresh(
    service: KeyService, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(bearer(token()))
    clock.now += REFRESH_INTERVAL
    service.delay = 0.05
    errors: list[int] = []

    async def forge(n: int) -> None:
        errors.append((await refused(validator, bearer(token(kid=f"forged-{n}")))).status_code)

    async with anyio.create_task_group() as tasks:
        for n in range(20):
            tasks.start_soon(forge, n)

    assert errors == [401] * 20
    assert service.fetches() == (2, 2)


async def test_unknown_key_ids_refresh_the_keys_once_per_refresh_interval(
    service: KeyService, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(bearer(token()))
    clock.now += REFRESH_INTERVAL

    await refused(validator, bearer(token(kid="forged-1")))
    clock.now += REFRESH_INTERVAL - 1
    await refused(validator, bearer(token(kid="forged-2")))

    assert service.fetches() == (2, 2)


async def test_an_unknown_key_id_on_a_cold_cache_costs_one_fetch(
    service: KeyService, validator: TokenValidator
) -> None:
    await refused(validator, bearer(token(kid="forged")))

    assert service.fetches() == (1, 1)


async def test_a_rotated_key_is_accepted_after_refresh_interval(
    service: KeyService, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(bearer(token()))
    service.keys = {"key-2": OTHER_KEY}
    clock.now += REFRESH_INTERVAL

    claims = await validator.validate(bearer(token(key=OTHER_KEY, kid="key-2")))

    assert claims["tid"] == TENANT_ID
    assert service.fetches() == (2, 2)


async def test_a_rotated_key_is_refused_until_refresh_interval_has_passed(
    service: KeyService, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(bearer(token()))
    clock.now += REFRESH_INTERVAL
    await refused(validator, bearer(token(kid="forged")))
    service.keys = {"key-2": OTHER_KEY}
    rotated = bearer(token(key=OTHER_KEY, kid="key-2"))

    clock.now += REFRESH_INTERVAL - 1
    assert "unknown key id" in str(await refused(validator, rotated))
    clock.now += 1
    assert (await validator.validate(rotated))["tid"] == TENANT_ID
    assert service.fetches() == (3, 3)


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_a_failed_fetch_is_unauthorized(
    service: KeyService, validator: TokenValidator, status: int
) -> None:
    service.status = status

    error = await refused(validator, bearer(token()))

    assert error.status_code == 401
    assert f"the signing keys could not be fetched: GET {CONFIG_URL} answered {status}" == str(
        error
    )


async def test_a_failed_fetch_is_retried_by_the_first_validation_after_the_back_off(
    service: KeyService, validator: TokenValidator, clock: FakeClock
) -> None:
    service.status = 503
    await refused(validator, bearer(token()))

    service.status = 200
    clock.now += 1.0  # the first back-off
    claims = await validator.validate(bearer(token()))

    assert claims["tid"] == TENANT_ID
    assert service.fetches() == (2, 1)


# --- key endpoint outages (issue 17, items 7 and 8) ------------------------------------------


def validator_for(
    client: httpx.AsyncClient, clock: FakeClock, app_id: Any = APP_ID, **options: Any
) -> TokenValidator:
    """A validator on the fake key service and ``clock``, made with ``options``."""
    return TokenValidator(
        app_id, openid_config_url=CONFIG_URL, http_client=client, clock=clock, **options
    )


def minted_at(clock: FakeClock) -> str:
    """A token issued now by ``clock``, valid for an hour."""
    now = int(clock.now)
    return token(iat=now - 60, nbf=now - 60, exp=now + 3600)


async def test_an_outage_after_cache_ttl_is_served_from_the_stale_keys(
    service: KeyService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = validator_for(client, clock, cache_ttl=3600, max_stale=7200)
    await validator.validate(bearer(token()))
    service.status = 503
    clock.now += 3600 + 60  # the cache is stale and its refresh fails
    assert TENANT_ID == (await validator.validate(bearer(minted_at(clock))))["tid"]
    assert TENANT_ID == (await validator.validate(bearer(minted_at(clock))))["tid"]
    clock.now += 7200  # past cache_ttl + max_stale: the stale keys are no longer trusted
    error = await refused(validator, bearer(minted_at(clock)))
    assert "the signing keys could not be fetched" in str(error)


async def test_an_outage_costs_one_fetch_per_back_off_not_one_per_callback(
    service: KeyService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = validator_for(client, clock, max_backoff=8)
    service.status = 503
    for _ in range(20):
        await refused(validator, bearer(minted_at(clock)))
    assert 1 == validator.fetches
    # The back-off doubles (1, 2, 4, 8, 8 s): each due retry is one fetch.
    for wait, fetches in [(1, 2), (1.9, 2), (0.1, 3), (4, 4), (8, 5), (8, 6)]:
        clock.now += wait
        for _ in range(5):
            await refused(validator, bearer(minted_at(clock)))
        assert fetches == validator.fetches
    service.status = 200
    clock.now += 8
    assert TENANT_ID == (await validator.validate(bearer(minted_at(clock))))["tid"]
    assert 7 == validator.fetches


async def test_concurrent_callbacks_during_an_outage_share_one_fetch(
    service: KeyService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = validator_for(client, clock)
    service.status = 503
    service.delay = 0.02

    async def validate() -> None:
        await refused(validator, bearer(token()))

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(validate)
    assert (1, 0) == service.fetches()


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_a_time_claim_too_large_for_a_float_is_a_401(
    validator: TokenValidator, claim: str
) -> None:
    changes: dict[str, Any] = {claim: 10**400}
    error = await refused(validator, bearer(token(**changes)))
    assert 401 == error.status_code
    assert f"the token's {claim!r} claim is not a plausible time" == str(error)


# --- who may call: tenants and application ids ---------------------------------------------


async def test_a_tenant_outside_the_allow_list_is_a_403(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = validator_for(client, clock, tenants=["another-tenant"])
    error = await refused(validator, bearer(token()))
    assert 403 == error.status_code
    assert "tenant" in str(error)
    allowed = validator_for(client, clock, tenants=[TENANT_ID, "another-tenant"])
    assert TENANT_ID == (await allowed.validate(bearer(token())))["tid"]


async def test_several_app_ids_accept_a_token_for_any_of_them(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    validator = validator_for(client, clock, app_id=["another-bot", APP_ID])
    assert APP_ID == (await validator.validate(bearer(token())))["aud"]
    alone = validator_for(client, clock, app_id=["another-bot"])
    assert 403 == (await refused(alone, bearer(token()))).status_code


@pytest.mark.parametrize("tenants", [[], ()])
def test_an_empty_tenant_allow_list_is_refused(tenants: Any) -> None:
    with pytest.raises(ValueError, match="tenants"):
        TokenValidator(APP_ID, tenants=tenants)


async def test_concurrent_validations_share_a_failed_fetch(
    service: KeyService, validator: TokenValidator
) -> None:
    service.status = 503
    service.delay = 0.05
    errors: list[str] = []

    async def validate() -> None:
        errors.append(str(await refused(validator, bearer(token()))))

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(validate)

    assert len(errors) == 20
    assert all("could not be fetched" in error for error in errors)
    assert service.fetches() == (1, 0)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(b"<html>", "did not answer JSON", id="not-json"),
        pytest.param(b"{}", "has no 'jwks_uri'", id="no-jwks-uri"),
        pytest.param(b'{"jwks_uri": 7}', "has no 'jwks_uri'", id="jwks-uri-not-a-string"),
    ],
)
async def test_a_broken_openid_document_is_unauthorized(document: bytes, reason: str) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=document))
    async with httpx.AsyncClient(transport=transport) as client:
        validator = TokenValidator(APP_ID, openid_config_url=CONFIG_URL, http_client=client)

        error = await refused(validator, bearer(token()))

    assert error.status_code == 401
    assert reason in str(error)


@pytest.mark.parametrize(
    "jwks",
    [
        pytest.param({"keys": []}, id="empty"),
        pytest.param({"keys": "nope"}, id="keys-not-a-list"),
        pytest.param({"keys": [{"kty": "oct", "kid": "key-1", "k": "c2VjcmV0"}]}, id="hmac-key"),
        pytest.param({"keys": [{**jwk("key-1", KEY), "use": "enc"}]}, id="encryption-key"),
        pytest.param({"keys": [{**jwk("key-1", KEY), "alg": "PS256"}]}, id="pss-key"),
        pytest.param({"keys": [{"kty": "RSA", "kid": "key-1", "n": "!", "e": "AQAB"}]}, id="bad-n"),
        pytest.param(
            {"keys": [{k: v for k, v in jwk("", KEY).items() if k != "kid"}]}, id="no-kid"
        ),
    ],
)
async def test_a_key_set_without_a_usable_rsa_key_is_unauthorized(jwks: dict[str, Any]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if str(request.url) == CONFIG_URL:
            return httpx.Response(200, json={"jwks_uri": JWKS_URL})
        return httpx.Response(200, json=jwks)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        validator = TokenValidator(APP_ID, openid_config_url=CONFIG_URL, http_client=client)

        error = await refused(validator, bearer(token()))

    assert f"the signing keys could not be fetched: {JWKS_URL} holds no RSA signing key" == str(
        error
    )


async def test_an_unreachable_key_endpoint_is_unauthorized() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        validator = TokenValidator(APP_ID, openid_config_url=CONFIG_URL, http_client=client)

        error = await refused(validator, bearer(token()))

    assert error.status_code == 401
    assert f"GET {CONFIG_URL} failed: ConnectError: connection refused" in str(error)


# --- the validator itself ------------------------------------------------------------------


def test_repr_is_short_and_names_the_app_and_the_document() -> None:
    validator = TokenValidator(APP_ID, openid_config_url=CONFIG_URL)

    assert f"TokenValidator(app_id={APP_ID!r}, openid_config_url={CONFIG_URL!r})" == repr(validator)


async def test_aclose_leaves_an_injected_client_open(
    client: httpx.AsyncClient, validator: TokenValidator
) -> None:
    await validator.aclose()

    assert not client.is_closed


async def test_aclose_without_any_fetch_is_harmless() -> None:
    validator = TokenValidator(APP_ID)

    await validator.aclose()
    await validator.aclose()


@pytest.mark.parametrize(
    ("app_id", "changes"),
    [
        pytest.param("", {}, id="empty-app-id"),
        pytest.param(APP_ID, {"issuers": ()}, id="no-issuers"),
        pytest.param(APP_ID, {"leeway": -1.0}, id="negative-leeway"),
        pytest.param(APP_ID, {"cache_ttl": math.nan}, id="nan-cache-ttl"),
        pytest.param(APP_ID, {"refresh_interval": -1.0}, id="negative-refresh-interval"),
    ],
)
def test_a_bad_configuration_is_refused(app_id: str, changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        TokenValidator(app_id, **changes)


async def test_a_single_issuer_string_is_one_issuer(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    issuers: Collection[str] = "https://graph.microsoft.com"
    validator = TokenValidator(
        APP_ID, openid_config_url=CONFIG_URL, http_client=client, issuers=issuers, clock=clock
    )

    assert (await validator.validate(bearer(token())))["tid"] == TENANT_ID
