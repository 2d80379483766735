"""Races: many containers fetching at the same minute, many processes registering keys."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from accounts.licensing import keys
from accounts.licensing import services as licensing_services
from accounts.models import License, SigningKey, SigningKeyStatus
from tests.accounts.licensing_support import license_url
from tests.conftest import make_tenant


@pytest.mark.django_db(transaction=True)
def test_a_burst_on_a_cold_cache_signs_one_license(live_server):
    """Twenty containers of one environment ask at once: one request signs, the others
    wait for its answer (single flight), so one license is recorded and all get it."""
    tenant = make_tenant("acme")
    url = f"{live_server.url}{license_url(tenant)}"
    barrier = threading.Barrier(20)

    def fetch_one(_: int) -> tuple[int, str]:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            response = http.get(url, headers={"authorization": tenant.api_key})
            return response.status_code, response.json()["token"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fetch_one, range(20)))

    assert {status for status, _ in results} == {200}
    assert len({token for _, token in results}) == 1
    assert License.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_registration_of_new_keys_leaves_exactly_one_active():
    """Processes deployed with different new keys register them at the same moment: the
    row lock and the one-active partial index leave one active key, none lost."""
    pairs = [keys.keypair(Ed25519PrivateKey.generate()) for _ in range(6)]
    barrier = threading.Barrier(len(pairs) * 2)

    def register(pair: keys.KeyPair) -> str:
        try:
            barrier.wait()
            return licensing_services.signing_key_register(pair=pair).kid
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(pairs) * 2) as pool:
        # Each key twice: the same key registered twice concurrently is one row.
        kids = list(pool.map(register, pairs * 2))

    assert sorted(kids) == sorted(p.kid for p in pairs * 2)
    assert SigningKey.objects.count() == len(pairs)
    assert SigningKey.objects.filter(status=SigningKeyStatus.ACTIVE).count() == 1
    assert (
        SigningKey.objects.filter(status=SigningKeyStatus.RETIRED, retired_at__isnull=False).count()
        == len(pairs) - 1
    )
