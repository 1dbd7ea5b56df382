"""The hot paths (api.hotpaths) mirror their routes: one answer per request, whichever path.

The e2e parity tests compare answers case by case; this one makes the cases complete: it
lists every parameter and dependency of the two routes the hot paths stand in for, so that
adding one to a route fails here until the hot path handles it (and this list says how).
"""

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from taskline.api.routes.tasks import router

# What each hot route reads, and how the hot path treats it.
MIRRORED = {
    ("GET", "/tasks/{task_id}"): {
        "path:task_id": "taken from the path",
        "query:wait": "any query string goes to the route",
        "dependency:credentials": "the same `credentials` the route depends on",
        "dependency:_store": "request.app.state.store",
        "dependency:_hub": "used by `wait` only, which goes to the route",
        "dependency:_slots": "a stream slot held by `wait` only, which goes to the route",
    },
    ("POST", "/tasks"): {
        "body:body": "TaskCreate.model_validate_json; anything else goes to the route",
        "header:idempotency-key": "read; over IDEMPOTENCY_KEY_MAX it goes to the route",
        "dependency:credentials": "the same `credentials` the route depends on",
        "dependency:_submitter": "request.app.state.submitter",
    },
}


def inputs(dependant: Dependant) -> set[str]:
    """Every parameter a route reads, its dependencies' included, as kind:name."""
    found = {f"path:{p.name}" for p in dependant.path_params}
    found |= {f"query:{p.name}" for p in dependant.query_params}
    found |= {f"header:{p.alias.lower()}" for p in dependant.header_params}
    found |= {f"cookie:{p.name}" for p in dependant.cookie_params}
    found |= {f"body:{p.name}" for p in dependant.body_params}
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", None) or type(sub.call).__name__.lower()
        found.add(f"dependency:{name}")
        found |= {i for i in inputs(sub) if not i.startswith("dependency:")}
    return found


def test_the_hot_paths_mirror_every_input_of_their_routes() -> None:
    routes = {
        (method, route.path): route
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    for key, mirrored in MIRRORED.items():
        found = inputs(routes[key].dependant)
        found = {i for i in found if not i.startswith("header:authorization")}
        assert found == set(mirrored), f"{key}: the hot path does not cover {found ^ set(mirrored)}"
