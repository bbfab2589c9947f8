"""The OpenAPI document, generated from the routes and the same pydantic
schemas that validate the requests."""

from __future__ import annotations

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from gateway.http import ROUTES

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "snake_case code"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_STATUS_TEXT = {
    400: "malformed JSON",
    401: "unauthenticated",
    403: "not allowed for this user",
    404: "unknown or not visible",
    409: "conflict",
    422: "invalid fields",
}


def build(title="销售CRM / Sales CRM API", version="1") -> dict:
    models: set[type[BaseModel]] = set()
    for r in ROUTES:
        for m in (r.body, r.response):
            if isinstance(m, type) and issubclass(m, BaseModel):
                models.add(m)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA

    paths: dict = {}
    for r in ROUTES:
        op: dict = {
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": f"{r.method.lower()}_{r.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in r.path_params
            ],
            "responses": {},
        }
        if r.query is not None:
            qs = r.query.model_json_schema()
            for name, prop in qs.get("properties", {}).items():
                op["parameters"].append({
                    "name": name, "in": "query", "required": name in qs.get("required", []),
                    "schema": prop,
                })
        if r.body is not None:
            op["requestBody"] = {
                "required": r.body_required,
                "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{r.body.__name__}"}}},
            }
        ok: dict = {"description": "success"}
        if isinstance(r.response, type) and issubclass(r.response, BaseModel):
            ok["content"] = {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{r.response.__name__}"}}}
        elif r.response is not None:
            schema = TypeAdapter(r.response).json_schema(
                ref_template="#/components/schemas/{model}")
            # list[Stage] names Stage in its own $defs: lift it to the
            # components its $ref points at.
            schemas.update(schema.pop("$defs", {}))
            ok["content"] = {"application/json": {"schema": schema}}
        op["responses"][str(r.status)] = ok
        codes = {400, 422} if r.body is not None else set()
        if r.query is not None:
            codes.add(422)
        if not r.public:
            codes |= {401, 403}
        if r.path_params:
            codes.add(404)
        for code in sorted(codes):
            op["responses"][str(code)] = {
                "description": _STATUS_TEXT[code],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if not r.public:
            op["security"] = [{"bearer": []}]
            if r.roles:
                op["description"] = "roles: " + ", ".join(r.roles)
        paths.setdefault(r.path, {})[r.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


if __name__ == "__main__":
    # python -m gateway.openapi OUT: the document the web app's API types are
    # generated from; written only when it changed, so make sees no change.
    import json
    import sys
    from pathlib import Path

    import gateway.service  # noqa: F401 - registers every route

    text = json.dumps(build(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    out = Path(sys.argv[1])
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
