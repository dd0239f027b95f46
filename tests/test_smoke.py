import pytest


@pytest.mark.gen_test
async def test_health_reports_database_and_embedded_redis(api):
    response = await api.get("/healthz")
    assert response.status == 200
    assert response.data == {"status": "ok", "database": "ok", "redis": "embedded"}
