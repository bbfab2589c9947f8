from gateway import openapi
from gateway.http import ROUTES
from gateway.service import GatewayService  # noqa: F401 - registers every route


def test_every_route_is_documented_with_its_errors():
    doc = openapi.build()
    assert {(r.method, r.path) for r in ROUTES} == {
        (m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        if r.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
            assert {"400", "422"} <= set(op["responses"])
        if not r.public:
            assert "401" in op["responses"] and op["security"]


def test_operation_ids_are_unique():
    doc = openapi.build()
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_reference_resolves():
    """A client generator (the web app's types) refuses a document with a
    dangling $ref; list responses once named models they did not carry."""
    doc = openapi.build()

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(doc))
    assert "#/components/schemas/Stage" in found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
