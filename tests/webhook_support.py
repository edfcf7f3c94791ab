"""What the webhook tests share: the calls service's signing keys, its tokens, and Graph.

:class:`KeyService` serves the OpenID document and the JWKS through ``httpx.MockTransport``
(the approach of ``test_auth.py``), with keys generated here; tokens are dated by the real
clock, because the webhook's validator reads it. :func:`graph` answers every invite POST
the way the spec's example 4 does, and :func:`completed` is that example's
operation-completed notification, made about any invite.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import callflow
from spec_examples import Example, examples

APP_ID: Final = "5ba7a1d2-5e3a-4f1b-9c1e-0a1b2c3d4e5f"
TENANT_ID: Final = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CONFIG_URL: Final = "https://keys.example/v1/.well-known/OpenIdConfiguration"
JWKS_URL: Final = "https://keys.example/v1/keys"
GRAPH: Final = "https://graph.microsoft.com/v1.0"

# Generated once: RSA key generation is slow, and no test changes a key.
KEY: Final = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY: Final = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def example() -> Example:
    """The spec's example 4: one PSTN participant invited to an existing call."""
    return examples()[4]


# --- the calls service's keys and tokens ---------------------------------------------------


class KeyService:
    """The calls service's key endpoints; counts the requests it answers."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests[url] += 1
        if url == CONFIG_URL:
            return httpx.Response(
                200, json={"issuer": "https://api.botframework.com", "jwks_uri": JWKS_URL}
            )
        if url == JWKS_URL:
            public = RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
            return httpx.Response(200, json={"keys": [{**public, "kid": "key-1", "use": "sig"}]})
        return httpx.Response(404)


def token(*, key: rsa.RSAPrivateKey = KEY, kid: str = "key-1", **changes: Any) -> str:
    """A token the calls service would send, signed with ``key``; a change to None drops a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://graph.microsoft.com",
        "aud": APP_ID,
        "tid": TENANT_ID,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def unsigned_token() -> str:
    """A valid token's header and claims, with ``alg: none`` and no signature."""
    _, payload, _ = token().split(".")
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "key-1"}).encode())
    return f"{none.rstrip(b'=').decode()}.{payload}."


# --- Graph ---------------------------------------------------------------------------------


def operation_id(client_context: str) -> str:
    """The operation id Graph gives an invite: the spec's own for the spec's clientContext."""
    spec = example()
    if client_context == spec.request["clientContext"]:
        return str(spec.response["id"])
    return f"op-{client_context}"


def graph(request: httpx.Request) -> httpx.Response:
    """Graph answering an invite POST as in example 4, about the invite it was sent."""
    client_context = json.loads(request.content)["clientContext"]
    response = {
        **example().response,
        "clientContext": client_context,
        "id": operation_id(client_context),
    }
    return httpx.Response(200, json=response)


def graph_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(graph), base_url=GRAPH)


async def invite(
    client: callflow.Client, client_context: str | None = None
) -> callflow.InviteHandle:
    """Example 4's invite, sent through ``client``; it is running once this returns."""
    spec = example()
    handle = await client.invite(
        spec.call_id,
        spec.request["participants"],
        client_context=client_context or spec.request["clientContext"],
    )
    assert callflow.InviteState.running == handle.state
    return handle


def completed(client_context: str | None = None) -> dict[str, Any]:
    """Example 4's operation-completed notification, about the invite with that context."""
    spec = example()
    body = copy.deepcopy(spec.completed)
    if client_context is None:
        return body
    old_id, new_id = str(spec.response["id"]), operation_id(client_context)
    entry = body["value"][0]
    entry["resource"] = entry["resource"].replace(old_id, new_id)
    entry["resourceUrl"] = entry["resourceUrl"].replace(old_id, new_id)
    entry["resourceData"]["id"] = new_id
    entry["resourceData"]["clientContext"] = client_context
    return body


class RecordingClient(callflow.Client):
    """A :class:`callflow.Client` that keeps what each ``receive_notifications`` call got."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts: list[callflow.Receipt] = []
        self.headers: list[dict[str, str]] = []

    async def receive_notifications(
        self,
        body: bytes | str | Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> callflow.Receipt:
        self.headers.append(dict(headers or {}))
        receipt = await super().receive_notifications(body, headers)
        self.receipts.append(receipt)
        return receipt
