"""A JSON API on top of nameko's HTTP entrypoint.

Nameko answers text/plain, HTML 404/405 and leaks exception text in 500s.
Here every answer is JSON in the error shape of API.md, CORS is handled for
browser clients, bodies are capped, and routes carry the metadata the OpenAPI
document is generated from.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass, field

import eventlet
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.wrappers import Request, Response

from gateway.addresses import of_request
from gateway.web import WebApp
from services.common import config
from services.common.credentials import ADDRESS, CREDENTIAL
from services.common.errors import BadRequest, CrmError, Forbidden, Invalid
from services.common.validation import field_errors, parse

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
WEB_APP = WebApp()


def dumps(payload) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def json_response(status: int, payload, headers: dict | None = None) -> Response:
    if payload is None and status == 204:
        return Response(status=204, headers=headers)
    return Response(dumps(payload), status=status, headers=headers, content_type=JSON_TYPE)


def error_response(status: int, code: str, message: str, headers=None, **extra) -> Response:
    return json_response(status, {"error": code, "message": message, **extra}, headers)


class PayloadTooLarge(CrmError):
    status = 413


def cors_origin(request_origin: str | None) -> str | None:
    if not request_origin:
        return None
    allowed = [o.strip() for o in str(config.get("CORS_ORIGINS", "*")).split(",") if o.strip()]
    if "*" in allowed:
        return "*"
    return request_origin if request_origin in allowed else None


CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"


class ApiWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        origin = cors_origin(request.headers.get("Origin"))
        if not (request.path == "/api" or request.path.startswith("/api/")):
            # Everything outside /api is the web app (gateway/web.py).
            return WEB_APP.serve(request)(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response = Response(status=204)
        else:
            try:
                provider, values = adapter.match()
                request.path_values = values
                response = provider.handle_request(request)
            except MethodNotAllowed as exc:
                response = error_response(
                    405, "method_not_allowed",
                    f"{request.method} is not allowed on {request.path}",
                    headers={"Allow": ", ".join(sorted(exc.valid_methods or []))},
                )
            except RouteNotFound:
                response = error_response(404, "not_found", f"no such endpoint: {request.path}")
            except HTTPException as exc:  # pragma: no cover - other routing errors
                response = error_response(exc.code or 400, "bad_request", exc.description or "")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
                response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        return response(environ, start_response)


class ApiServer(WebServer):
    def get_wsgi_app(self):
        return ApiWsgiApp(self)


class ApiHandler(HttpRequestHandler):
    server = ApiServer()

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, payload = result
        return json_response(status, payload)

    def response_from_exception(self, exc):
        if isinstance(exc, CrmError):
            headers = None
            if exc.status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            if exc.status == 429 and "retry_after_seconds" in exc.details:
                headers = {"Retry-After": str(exc.details["retry_after_seconds"])}
            return json_response(exc.status, exc.body(), headers)
        if isinstance(exc, eventlet.Timeout):
            return error_response(503, "service_unavailable", "a service did not answer in time")
        request_id = uuid.uuid4().hex[:12]
        log.error("internal error %s", request_id, exc_info=(type(exc), exc, exc.__traceback__))
        return error_response(500, "internal_error", "internal error", request_id=request_id)


api = ApiHandler.decorator


@dataclass
class RouteMeta:
    method: str
    path: str  # API.md style: /api/customers/{id}
    summary: str
    roles: tuple[str, ...] | None
    public: bool
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: object | None
    status: int
    tag: str
    path_params: list[str] = field(default_factory=list)
    body_required: bool = True


ROUTES: list[RouteMeta] = []

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class Call:
    """What a route handler receives about the request besides its body."""

    user: object  # services.common.principal.Principal, or None on public routes
    request: Request

    @property
    def address(self) -> str:
        return of_request(self.request)

    @property
    def actor(self) -> dict | None:
        if not self.user:
            return None
        return {**self.user.as_dict(), "address": self.address}


def read_body(request: Request) -> bytes:
    limit = int(config.get("MAX_BODY_BYTES", 1048576))
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("payload_too_large", f"the body is larger than {limit} bytes")
    stream = request.stream
    if request.content_length is None and "chunked" in request.headers.get(
            "Transfer-Encoding", "").lower():
        # werkzeug reads a body without a length as empty unless the server
        # says it ends the input (eventlet does not); eventlet's input decodes
        # the chunks itself, and reading at most limit + 1 bytes still caps it.
        stream = request.environ["wsgi.input"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge("payload_too_large", f"the body is larger than {limit} bytes")
    return data


def parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    return parse(model, read_body(request))


def body_text(request: Request) -> str:
    """The raw JSON body for a service that validates it itself (after it
    checked who may call)."""
    try:
        return read_body(request).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("malformed_json", "the body is not valid JSON") from None


def parse_query(request: Request, model: type[BaseModel]) -> BaseModel:
    params = {k: v for k, v in request.args.items()}
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise Invalid.fields(field_errors(exc), "some query parameters are invalid") from None


class RequestContext(DependencyProvider):
    """The worker's context data: what every RPC of this request carries
    (the user's token, the client's address)."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data


# What a user whose password was reset may still do: see himself, change it.
PASSWORD_CHANGE_ROUTES = {("GET", "/api/users/me"), ("POST", "/api/users/me/password")}


def sign_in_request(service, request, token: str, method: str = "", path: str = ""):
    """The verified, still-valid user of a token, and the request's RPCs
    made on his behalf (401 `account_disabled`/`session_revoked`)."""
    from gateway.auth import principal_of
    from gateway.sessions import SESSIONS

    user = principal_of(token)
    SESSIONS.check(service.sessions_rpc, user)
    if user.must_change_password and (method, path) not in PASSWORD_CHANGE_ROUTES:
        raise Forbidden("password_change_required",
                        "your password was reset: choose a new one first")
    service.request_context[CREDENTIAL] = token
    return user


def route(
    method: str,
    path: str,
    *,
    summary: str,
    roles: tuple[str, ...] | None = None,
    public: bool = False,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response=None,
    status: int = 200,
    tag: str = "",
):
    """Declare an endpoint: authentication, role check, body and query
    validation happen here, so a handler only translates and delegates."""
    from gateway.auth import bearer_token

    werkzeug_path = _PARAM.sub(r"<\1>", path)
    meta = RouteMeta(method, path, summary, roles, public, body, query, response, status,
                     tag or path.split("/")[2], _PARAM.findall(path))
    ROUTES.append(meta)

    def decorate(fn):
        @functools.wraps(fn)
        def handler(self, request, **path_values):
            self.request_context[ADDRESS] = of_request(request)
            user = None if public else sign_in_request(self, request, bearer_token(request),
                                                       method, path)
            if roles and user.role not in roles:
                raise Forbidden("forbidden", f"this needs the role: {' or '.join(roles)}")
            kwargs = dict(path_values)
            if body is not None:
                kwargs["body"] = parse_body(request, body)
            if query is not None:
                kwargs["query"] = parse_query(request, query)
            result = fn(self, Call(user, request), **kwargs)
            if isinstance(result, Response):
                return result
            return status, result

        return api(method, werkzeug_path)(handler)

    return decorate
