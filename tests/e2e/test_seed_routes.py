"""The seed projects' routes answer as their READMEs show and create ordinary tasks."""

import httpx
import pytest

from tests.client import read, wait_done

pytestmark = pytest.mark.e2e


def test_leibnic_returns_an_id_of_an_ordinary_task(api: httpx.Client) -> None:
    for response in (api.get("/leibnic/3"), api.post("/leibnic/3")):
        assert response.status_code == 202
        assert set(response.json()) == {"id"}
        task = wait_done(api, response.json()["id"])
        assert task["name"] == "leibniz_pi" and task["result"]["pi"] == "3.141"
    long = api.post("/leibnic/30").json()["id"]
    assert read(api, long)["params"]["method"] == "euler-maclaurin"
    assert wait_done(api, long)["result"]["pi"] == "3.141592653589793238462643383279"
    assert api.get("/leibnic/0").status_code == 422


def test_generate_sn_takes_the_seed_body(api: httpx.Client) -> None:
    response = api.post("/generate_sn", json={"code_model": "0111", "number": 1, "count": 10})
    assert response.status_code == 202 and set(response.json()) == {"id"}
    task = wait_done(api, response.json()["id"])
    assert task["name"] == "generate_serials" and task["result"]["count"] == 10
    assert len(task["result"]["serials"]) == 10
    assert task["result"]["first"].endswith("0111000001")
    bad = api.post("/generate_sn", json={"code_model": "0111", "number": 1, "count": 0})
    assert bad.status_code == 422


def test_api_tasks_takes_name_qwargs_and_delay(api: httpx.Client) -> None:
    body = {"name": "reverse", "qwargs": {"text": "hello"}, "delay_seconds": 0.2}
    response = api.post("/api/tasks", json=body)
    assert response.status_code == 202 and set(response.json()) == {"id"}
    task = wait_done(api, response.json()["id"])
    assert task["result"] == "olleh" and task["params"]["delay_seconds"] == 0.2
    cancel = api.post(f"/tasks/{task['id']}/cancel")
    assert cancel.status_code == 409
