"""Step-up with a real provider's own acr values (DSAR_STEP_UP_ACR_VALUES): a person whose
provider names its multi-factor login in its own words can export once the operator lists them.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from api.settings import Settings
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests._factories import linked_person

from .idp import AUDIENCE, IdP, app_client

# What a provider calls a multi-factor login (the OpenID PAPE policy URI, as Auth0 sends it),
# and a second one an operator may list beside it.
MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
REQUEST = """mutation { requestExport(input: {format: JSON}) { __typename
  ... on Export { id downloadUrl verification { acr } }
  ... on StrongerLoginRequired { acrValues maxAge } } }"""


@pytest.fixture
async def person(idp: IdP, stores: Stores, catalogue: Catalogue) -> str:
    return await linked_person(stores, catalogue, idp.issuer, "acr", 81)


async def test_an_export_with_the_providers_own_strong_acr(
    idp: IdP, settings: Settings, deployment: Deployment, person: str, tmp_path: Path
) -> None:
    configured = Settings.from_env(
        {
            "DSAR_HOME": str(tmp_path),
            "DSAR_SECRET_KEY": settings.secret_key.decode(),
            "DSAR_STEP_UP_ACR_VALUES": f"{MFA}, phr",
        }
    )
    assert configured.step_up_acr_values == (MFA, "phr")
    token = await idp.customer_token(person, acr=MFA)
    base = replace(settings, issuers=(idp.issuer,), audience=AUDIENCE)

    # By default only dsar's own urn:dsar:acr:strong counts: the provider's MFA login does not.
    async with app_client(base) as client:
        r = await client.post(
            "/graphql", json={"query": REQUEST}, headers={"Authorization": f"Bearer {token}"}
        )
        refused = r.json()["data"]["requestExport"]
        assert refused["__typename"] == "StrongerLoginRequired"
        assert refused["acrValues"] == ["urn:dsar:acr:strong"]

    strong = replace(base, step_up_acr_values=configured.step_up_acr_values)
    async with app_client(strong) as client:
        headers = {"Authorization": f"Bearer {token}"}
        r = await client.post("/graphql", json={"query": REQUEST}, headers=headers)
        export = r.json()["data"]["requestExport"]
        assert export["__typename"] == "Export", export
        assert export["verification"]["acr"] == MFA
        download = await client.get(export["downloadUrl"], headers=headers)
        assert download.status_code == 200
        manifest = orjson.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("manifest.json"))
        assert manifest["export_id"] == export["id"]
        # A weak login is still asked to step up, with the configured values in the challenge.
        weak = await idp.customer_token(person, acr="urn:idp:password")
        r = await client.get(export["downloadUrl"], headers={"Authorization": f"Bearer {weak}"})
        assert r.status_code == 401
        assert f'acr_values="{MFA} phr"' in r.headers["www-authenticate"]
