"""The launcher, the compose file, the gateway's health list and the event map
all name the same services, and those services exist in the code."""

import importlib
import re
from pathlib import Path

import yaml

from gateway.service import SERVICES
from services.common.contracts import BROADCASTS
from services.common.events import SUBSCRIPTIONS, handler_name

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"rabbitmq", "mongo"}


def procfile_targets() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip():
            name, cmd = line.split(":", 1)
            out[name.strip()] = re.search(r"(\S+:\w+)\s*$", cmd).group(1)
    return out


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_parses_and_names_exactly_the_services_in_the_code():
    doc = compose()
    services = doc["services"]
    assert set(services) - INFRA == set(procfile_targets())
    assert services["mongo"]["image"].startswith("mongo:7")
    assert "management" in services["rabbitmq"]["image"]
    for name in set(services) - INFRA:
        env = services[name]["environment"]
        assert env["CRM_SERVICE"] == procfile_targets()[name]
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
    for infra in INFRA:
        assert "healthcheck" in services[infra]


def test_every_launched_target_is_a_nameko_service_of_that_name():
    for name, target in procfile_targets().items():
        module, cls = target.split(":")
        service = getattr(importlib.import_module(module), cls)
        assert service.name == name


def test_health_asks_every_service_but_the_gateway():
    assert set(SERVICES) == set(procfile_targets()) - {"gateway"}


def test_every_subscription_has_its_handler_and_back():
    targets = procfile_targets()
    classes = {n: getattr(importlib.import_module(t.split(":")[0]), t.split(":")[1])
               for n, t in targets.items()}
    from nameko.events import EventHandler

    declared = set()
    for (source, event_type), subscribers in SUBSCRIPTIONS.items():
        assert source in classes
        for sub in subscribers:
            declared.add((sub, source, event_type))
    for (source, event_type), listeners in BROADCASTS.items():
        declared.update((sub, source, event_type) for sub in listeners)
    found = set()
    for name, cls in classes.items():
        for attr in dir(cls):
            for ext in getattr(getattr(cls, attr), "nameko_entrypoints", ()):
                if isinstance(ext, EventHandler):
                    assert attr == handler_name(ext.event_type)
                    found.add((name, ext.source_service, ext.event_type))
    # every handler in the code is declared (so its queue exists before the
    # first event); a declared one not yet written only costs an idle queue
    assert found <= declared, found - declared


def test_the_image_carries_the_built_web_app_where_the_gateway_looks():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile and "vite build" in dockerfile
    copied = re.search(r"COPY --from=web /web/dist (\S+)", dockerfile).group(1)
    where = re.search(r"ENV CRM_WEB_DIST=(\S+)", dockerfile).group(1)
    assert where == "/app/" + copied.removeprefix("./")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"web/node_modules", "web/dist", ".venv", ".data"} <= set(ignored)


def _imports(path: Path) -> set[str]:
    import ast
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_service_imports_another_service_and_the_gateway_only_schemas():
    services = {p.name for p in (ROOT / "services").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()} - {"common"}
    wrong = []
    for path in (ROOT / "services").rglob("*.py"):
        own = path.relative_to(ROOT / "services").parts[0]
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] in services - {own}:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    for path in (ROOT / "gateway").rglob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if (parts[0] == "services" and len(parts) > 2 and parts[1] in services
                    and not parts[2].endswith("schemas")):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


ENTRYPOINTS_AND_PROVIDERS = {"services/knowledge/replica.py"}


def test_domains_stay_pure():
    """No domain, rule or normalizer module imports nameko, jwt or pymongo."""
    heavy = ("nameko", "jwt", "argon2", "pymongo", "kombu", "eventlet", "services.common.auth",
             "services.common.events", "services.common.mongo", "services.common.rpc")
    wrong = []
    for path in (ROOT / "services").rglob("*.py"):
        if (path.name in {"service.py", "storage.py", "cli.py"} or "storage" in path.parts
                or "entrypoints" in path.parts):
            continue
        if str(path.relative_to(ROOT)) in ENTRYPOINTS_AND_PROVIDERS:
            continue
        if path.parent.name == "common" and path.stem not in {
                "principal", "money", "stages", "escalation", "timezones", "contracts", "reminders",
                "field_error", "errors"}:
            continue
        for module in _imports(path):
            if module.startswith(heavy):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_the_customers_domain_raises_its_own_errors():
    """Its rules say what went wrong; the entrypoints choose the RPC error."""
    pure = [p for p in (ROOT / "services" / "customers").rglob("*.py")
            if not {"entrypoints", "storage"} & set(p.parts) and p.name not in {
                "service.py", "errors.py"}]
    assert [str(p.relative_to(ROOT)) for p in pure
            if "services.common.errors" in _imports(p)] == []
