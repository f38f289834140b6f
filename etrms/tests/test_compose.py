"""docker-compose.yml is valid for Debian's docker-compose (1.29) and has the production
shape of SPEC §2: every process waits for healthy PostgreSQL and Redis and for the
one-shot migrate, which runs before any of them; gunicorn serves HTTP, daphne the
WebSockets, and nginx (from deploy/nginx/) routes them behind the one published port."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "ws", "worker", "beat", "feed")


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory) -> dict:
    """`docker-compose config` of the repo's compose file, with `.env.example` as `.env`
    (env_file needs the file to exist); run in a copy so the repo gets no `.env`."""
    if shutil.which("docker-compose") is None:
        pytest.skip("the docker-compose binary is not installed (Debian: apt-get install docker-compose)")
    workdir = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", workdir / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", workdir / ".env")
    command = ["docker-compose", "-f", "docker-compose.yml"]

    quiet = subprocess.run([*command, "config", "-q"], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0, quiet.stderr

    full = subprocess.run([*command, "config"], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert full.returncode == 0, full.stderr
    return yaml.safe_load(full.stdout)


def _conditions(service: dict) -> dict[str, str]:
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):  # the short form means service_started
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def test_all_services_present(compose_config):
    services = compose_config["services"]
    for name in ("postgres", "redis", "migrate", *APP_SERVICES):
        assert name in services, f"service {name!r} missing from docker-compose.yml"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:")


def test_every_service_is_health_checked_or_waits_for_healthy_services(compose_config):
    services = compose_config["services"]
    for name in ("postgres", "redis", "web", "ws", "worker", "beat", "feed", "nginx"):
        service = services[name]
        waits_for_healthy = "service_healthy" in _conditions(service).values()
        assert "healthcheck" in service or waits_for_healthy, f"{name}: no healthcheck and no healthy dependency"
    for name in ("postgres", "redis", "web", "ws"):
        test = services[name]["healthcheck"]["test"]
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck test {test!r}"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])


def test_processes_wait_for_healthy_stores_and_for_migrate(compose_config):
    services = compose_config["services"]
    assert _conditions(services["migrate"]) == {"postgres": "service_healthy", "redis": "service_healthy"}
    assert "migrate" in " ".join(services["migrate"]["command"])
    assert "bootstrap" in " ".join(services["migrate"]["command"])
    for name in APP_SERVICES:
        assert _conditions(services[name]) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name


def test_processes_use_the_compose_stores(compose_config):
    """`environment:` wins over `.env`, so the app always talks to the compose services."""
    services = compose_config["services"]
    for name in ("migrate", *APP_SERVICES):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://etrms:")
        assert environment["DATABASE_URL"].endswith("@postgres:5432/etrms")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["command"][:4] == ["celery", "-A", "etrms", "worker"]
    assert "critical,high,normal,low" in services["worker"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "etrms", "beat"]
    assert services["web"]["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py", "etrms.wsgi"]
    assert services["ws"]["command"][0] == "daphne"
    assert services["ws"]["command"][-1] == "etrms.asgi:application"


def test_nginx_is_the_one_public_port_in_front_of_web_and_ws(compose_config):
    services = compose_config["services"]
    nginx = services["nginx"]
    assert nginx["image"].startswith("nginx:")
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx"}, published
    assert [port["published"] if isinstance(port, dict) else port for port in nginx["ports"]]
    assert _conditions(nginx) == {"web": "service_healthy", "ws": "service_healthy"}
    template = nginx["volumes"][0]
    source = template["source"] if isinstance(template, dict) else template.split(":")[0]
    assert source.endswith("deploy/nginx/etrms.conf.template")
    assert nginx["environment"]["ETRMS_WEB_UPSTREAM"] == "web:8000"
    assert nginx["environment"]["ETRMS_WS_UPSTREAM"] == "ws:8001"
    assert services["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"


def test_each_process_has_its_metrics_port(compose_config):
    services = compose_config["services"]
    for name, variable in (
        ("ws", "METRICS_PORT_WS"),
        ("worker", "METRICS_PORT_WORKER"),
        ("beat", "METRICS_PORT_BEAT"),
        ("feed", "METRICS_PORT_FEED"),
    ):
        port = services[name]["environment"][variable]
        assert port.isdigit() and int(port) > 0, name
        assert port in [str(p) for p in services[name]["expose"]], name
    assert services["worker"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]


def test_env_example_sets_every_variable_the_settings_read():
    """A variable settings.py reads and `.env.example` does not mention is undocumented."""
    settings_source = (ROOT / "etrms" / "settings.py").read_text()
    read = set(re.findall(r'\.(?:str|int|bool|float|list|json|db|url)\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'"([A-Z][A-Z0-9_]+)" in env', settings_source))
    read |= set(re.findall(r'_required_in_production\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    example = (ROOT / ".env.example").read_text()
    mentioned = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert read, "no environment reads found in settings.py; the pattern above is stale"
    assert read - mentioned == set()


def test_the_image_carries_the_server_configuration():
    """compose's web command reads deploy/gunicorn.conf.py inside the image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy ./deploy" in dockerfile
    assert (ROOT / "deploy" / "gunicorn.conf.py").is_file()
    assert (ROOT / "deploy" / "nginx" / "etrms.conf.template").is_file()
