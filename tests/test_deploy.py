"""The deployment recipes in deploy/: the systemd unit passes `systemd-analyze verify`, the nginx
site passes `nginx -t` and, run on loopback ports, forwards only addresses and schemes of its
own; every PLAYBOOK_* variable and `playbook` option they name exists."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.config import Settings
from tests.fakes import PROJECT_ROOT, free_port

DEPLOY = PROJECT_ROOT / "deploy"
UNIT = DEPLOY / "playbook.service"
SITE = DEPLOY / "nginx.conf"
ENV_EXAMPLE = DEPLOY / "env.example"
GUIDE = DEPLOY / "README.md"
INSTALLED_PLAYBOOK = "/opt/playbook/venv/bin/playbook"
LOCAL_PLAYBOOK = Path(sys.executable).with_name("playbook")  # this checkout's, in .venv
CERTIFICATE = "/etc/ssl/playbook/fullchain.pem"
PRIVATE_KEY = "/etc/ssl/playbook/privkey.pem"
SERVER_NAME = "playbook.example.com"
APP_ADDRESS = "127.0.0.1:8000"


def unit_settings(text: str) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> values, in order, from a unit file (comments and blanks skipped)."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key), []).append(value)
    return settings


def service(key: str) -> str:
    [value] = unit_settings(UNIT.read_text(encoding="utf-8"))[("Service", key)]
    return value


def env_example(include_commented: bool = False) -> dict[str, str]:
    """KEY=value lines of env.example; with include_commented, also `#KEY=value` examples that
    have a value."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(#?)(PLAYBOOK_[A-Z0-9_]+)=(.*)", line)
        if match and (not match[1] or (include_commented and match[3])):
            values[match[2]] = match[3]
    return values


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as shipped, but for the binary's path: verify needs ExecStart to exist."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED_PLAYBOOK) == 2  # ExecStart and ExecReload
    assert os.access(LOCAL_PLAYBOOK, os.X_OK)
    local = tmp_path / "playbook.service"
    local.write_text(text.replace(INSTALLED_PLAYBOOK, str(LOCAL_PLAYBOOK)), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(local)], capture_output=True,
                          text=True, timeout=60)
    # verify exits 0 on an unknown key or a bad value too; it only warns: so no output at all.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_systemd_analyze_verify_would_catch_a_bad_option(tmp_path: Path) -> None:
    """The check above can fail: a misspelt option and a bad value are reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    text = UNIT.read_text(encoding="utf-8").replace(INSTALLED_PLAYBOOK, str(LOCAL_PLAYBOOK))
    assert "\nRestart=on-failure\n" in text
    broken = text.replace("\nRestart=on-failure\n",
                          "\nRestart=sometimes\nProtectEverything=yes\n")
    local = tmp_path / "playbook.service"
    local.write_text(broken, encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(local)], capture_output=True,
                          text=True, timeout=60)
    assert "Failed to parse service restart specifier, ignoring: sometimes" in done.stderr
    assert "Unknown key 'ProtectEverything' in section [Service]" in done.stderr


def test_the_unit_runs_the_server_on_loopback_as_its_own_user_sandboxed() -> None:
    assert service("ExecStart") == f"{INSTALLED_PLAYBOOK} serve --host 127.0.0.1 --port 8000"
    assert service("ExecReload") == f"{INSTALLED_PLAYBOOK} reload --url http://{APP_ADDRESS}"
    assert (service("User"), service("Group")) == ("playbook", "playbook")
    assert service("WorkingDirectory") == "/srv/playbook"
    assert service("EnvironmentFile") == "/etc/playbook/env"
    assert service("Restart") == "on-failure"
    assert service("Environment") == "ORT_DISABLE_TELEMETRY=1"
    assert (service("IPAddressAllow"), service("IPAddressDeny")) == ("localhost", "any")
    assert {key: service(key) for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome",
                                          "PrivateTmp", "PrivateDevices", "CapabilityBoundingSet")
            } == {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                  "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": ""}


def test_the_unit_may_write_exactly_the_folders_the_settings_name() -> None:
    """ReadWritePaths = the knowledge (review adds write it), the index, and the query log's
    folder, as env.example sets them."""
    env = env_example()
    assert service("ReadWritePaths").split() == [
        env["PLAYBOOK_KNOWLEDGE_DIR"], env["PLAYBOOK_INDEX_DIR"],
        str(Path(env["PLAYBOOK_DB_PATH"]).parent)]
    assert service("ReadWritePaths").split() == [
        "/srv/playbook/knowledge", "/srv/playbook/index", "/srv/playbook/var"]


def test_every_setting_named_in_deploy_exists() -> None:
    named: dict[str, set[str]] = {}
    for path in (UNIT, SITE, ENV_EXAMPLE, GUIDE):
        for name in re.findall(r"\bPLAYBOOK_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.name)
    unknown = {name: sorted(files) for name, files in named.items()
               if name.removeprefix("PLAYBOOK_").lower() not in Settings.model_fields}
    assert unknown == {}
    assert {"PLAYBOOK_KNOWLEDGE_DIR", "PLAYBOOK_INDEX_DIR", "PLAYBOOK_DB_PATH",
            "PLAYBOOK_ADMIN_TOKEN", "PLAYBOOK_FORWARDED_ALLOW_IPS"} <= set(named)


def test_the_example_env_file_loads_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PLAYBOOK_"):
            monkeypatch.delenv(name)
    for name, value in env_example(include_commented=True).items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(_env_file=None)
    assert (settings.knowledge_dir, settings.index_dir, settings.db_path) == (
        Path("/srv/playbook/knowledge"), Path("/srv/playbook/index"),
        Path("/srv/playbook/var/feedback.sqlite3"))
    assert settings.forwarded_allow_ips == "127.0.0.1"
    assert settings.admin_token == "replace-with-a-long-random-token"
    assert (settings.workers, settings.rate_limit_per_minute, settings.retention_days,
            settings.log_queries, settings.max_body_bytes) == (2, 120, 30, True, 65_536)


def test_the_units_commands_parse_with_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """ExecStart's and ExecReload's subcommand and options exist (`--help` lists each option)
    and parse to the intended values."""
    monkeypatch.delenv("PLAYBOOK_ADMIN_TOKEN", raising=False)  # reload's --token reads it
    parsed = {}
    for key in ("ExecStart", "ExecReload"):
        binary, name, *args = shlex.split(service(key))
        assert binary == INSTALLED_PLAYBOOK
        shown = CliRunner().invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        for option in (arg for arg in args if arg.startswith("--")):
            assert re.search(rf"^\s+{re.escape(option)}\b", shown.output, re.MULTILINE), option
        command = main.get_command(click.Context(main), name)
        assert command is not None, name
        parsed[name] = command.make_context(name, list(args), obj=None).params
    assert parsed == {"serve": {"host": "127.0.0.1", "port": 8000, "workers": None},
                      "reload": {"url": f"http://{APP_ADDRESS}", "token": None}}


def test_the_guides_commands_and_options_exist() -> None:
    """Every `pb NAME --option` and `.../venv/bin/playbook NAME --option` in deploy/README.md."""
    text = GUIDE.read_text(encoding="utf-8")
    lines = re.findall(r"(?:\bpb|/opt/playbook/venv/bin/playbook) ([a-z][a-z-]*)([^\n#&|>]*)",
                       text)
    assert {name for name, _ in lines} == {"init", "lint", "build", "reload", "backup"}
    for name, rest in lines:
        assert name in main.list_commands(click.Context(main)), name
        shown = CliRunner().invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        for option in re.findall(r"(?<!\S)--[a-z][a-z-]*", rest):
            assert re.search(rf"^\s+{re.escape(option)}\b", shown.output, re.MULTILINE), (
                name, option)


def nginx_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmM]?)", value)
    assert match, value
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[match[2].lower()]


def test_the_proxys_body_limit_is_the_apps_and_it_proxies_to_the_unit() -> None:
    text = re.sub(r"#.*", "", SITE.read_text(encoding="utf-8"))  # the directives
    [limit] = re.findall(r"^\s*client_max_body_size\s+(\S+);", text, re.MULTILINE)
    assert nginx_size(limit) == Settings.model_fields["max_body_bytes"].default == 65_536
    assert re.findall(r"^\s*proxy_pass\s+(\S+);", text, re.MULTILINE) == [
        f"http://{APP_ADDRESS}"] * 3
    assert f"--port {APP_ADDRESS.split(':')[1]}" in service("ExecStart")
    # Overwritten from what nginx saw, never appended to the client's header.
    assert "$proxy_add_x_forwarded_for" not in text
    assert re.findall(r"^\s*proxy_set_header\s+(X-Forwarded-(?:For|Proto))\s+(\S+);", text,
                      re.MULTILINE) == [("X-Forwarded-For", "$remote_addr"),
                                        ("X-Forwarded-Proto", "$scheme")]
    assert env_example()["PLAYBOOK_FORWARDED_ALLOW_IPS"] == "127.0.0.1"


# --- nginx itself: `nginx -t`, then a run on loopback ports ---------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if found is None:
        pytest.skip("nginx is not installed (`make nginx` installs Debian's)")
    return found


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for SERVER_NAME and 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed, to make a test certificate")
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={SERVER_NAME}",
                    "-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    return certificate, key


def replace_exactly(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) == count, (old, text.count(old))
    return text.replace(old, new)


def nginx_config(folder: Path, site: str, foreground: bool = False) -> Path:
    """A main config that includes `site` (with the test certificate) and keeps every file
    nginx writes in `folder`."""
    certificate, key = self_signed_certificate(folder)
    site = replace_exactly(site, CERTIFICATE, str(certificate))
    site = replace_exactly(site, PRIVATE_KEY, str(key))
    (folder / "site.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main_config = folder / "nginx.conf"
    main_config.write_text(
        ("daemon off;\nmaster_process off;\n" if foreground else "")
        + f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        + "events {}\nhttp {\n    access_log off;\n" + temp
        + f"\n    include {folder / 'site.conf'};\n}}\n", encoding="utf-8")
    return main_config


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx = nginx_binary()
    config = nginx_config(tmp_path, SITE.read_text(encoding="utf-8"))
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                           "-c", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"nginx: the configuration file {config} syntax is ok",
        f"nginx: configuration file {config} test is successful"]  # no [warn] either


class Backend(http.server.ThreadingHTTPServer):
    """Stands in for `playbook serve`: records each request's headers and body size."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), BackendHandler)


class BackendHandler(http.server.BaseHTTPRequestHandler):
    server: Backend

    def answer(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        self.server.seen.append({"method": self.command, "path": self.path, "size": size,
                                 "headers": [(k.lower(), v) for k, v in self.headers.items()]})
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The site served by nginx on free loopback ports, in front of a recording backend."""
    nginx = nginx_binary()
    backend = Backend()
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    while https_port == http_port:
        https_port = free_port()
    site = SITE.read_text(encoding="utf-8")
    site = replace_exactly(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace_exactly(site, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = replace_exactly(site, "    listen [::]:80;\n", "")
    site = replace_exactly(site, "    listen [::]:443 ssl;\n", "")
    site = replace_exactly(site, f"proxy_pass http://{APP_ADDRESS};",
                           f"proxy_pass http://127.0.0.1:{backend.server_address[1]};", count=3)
    config = nginx_config(tmp_path, site, foreground=True)
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                                "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                log = (tmp_path / "error.log").read_text(encoding="utf-8", errors="replace")
                raise AssertionError(f"nginx exited ({process.returncode}): {log}")
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen within 20 s"
                time.sleep(0.05)
        certificate = tmp_path / "fullchain.pem"
        yield {"http": f"http://127.0.0.1:{http_port}", "https": f"https://127.0.0.1:{https_port}",
               "tls": ssl.create_default_context(cafile=str(certificate)), "backend": backend}
    finally:
        process.terminate()
        process.wait(timeout=30)
        backend.shutdown()
        backend.server_close()


def client(proxy: dict[str, Any], source: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(headers={"Host": SERVER_NAME}, timeout=10,
                        transport=httpx.HTTPTransport(verify=proxy["tls"], local_address=source))


SPOOFED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http",
           "Forwarded": "for=203.0.113.9;proto=http", "X-Real-IP": "203.0.113.9",
           "X-Forwarded-Host": "evil.example", "X-Request-Id": "chosen-by-the-client"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("POST", "/api/ask"),
                                               ("POST", "/api/admin/reload")])
def test_the_proxy_forwards_the_address_and_scheme_it_saw_not_the_clients(
        proxy: dict[str, Any], method: str, path: str) -> None:
    """From 127.0.0.2 (a client that is not the proxy itself), with every forwarding header
    spoofed: the app gets exactly one address, 127.0.0.2, and https, in every location."""
    with client(proxy, source="127.0.0.2") as http:
        response = http.request(method, proxy["https"] + path, headers=SPOOFED,
                                content=b"{}" if method == "POST" else None)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    [seen] = proxy["backend"].seen
    headers = seen["headers"]
    forwarded = {name: [value for key, value in headers if key == name] for name in (
        "x-forwarded-for", "x-forwarded-proto", "host", "forwarded", "x-real-ip",
        "x-forwarded-host")}
    assert forwarded == {"x-forwarded-for": ["127.0.0.2"], "x-forwarded-proto": ["https"],
                         "host": [SERVER_NAME], "forwarded": [], "x-real-ip": [],
                         "x-forwarded-host": []}
    [request_id] = [value for key, value in headers if key == "x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, not the client's
    assert (seen["method"], seen["path"]) == (method, path)


def test_plain_http_is_redirected_to_https(proxy: dict[str, Any]) -> None:
    with client(proxy) as http:
        response = http.get(proxy["http"] + "/api/search?q=po+status&k=3")
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{SERVER_NAME}/api/search?q=po+status&k=3"
    assert proxy["backend"].seen == []


def test_a_body_over_the_apps_limit_stops_at_the_proxy(proxy: dict[str, Any]) -> None:
    limit = Settings.model_fields["max_body_bytes"].default
    with client(proxy) as http:
        statuses = [http.post(proxy["https"] + "/api/ask", content=b"x" * size,
                              headers={"Content-Type": "application/json"}).status_code
                    for size in (limit, limit + 1)]
    assert statuses == [200, 413]
    assert [seen["size"] for seen in proxy["backend"].seen] == [limit]


def test_metrics_are_served_to_the_host_only(proxy: dict[str, Any]) -> None:
    with client(proxy) as local, client(proxy, source="127.0.0.2") as remote:
        statuses = [local.get(proxy["https"] + "/metrics").status_code,
                    remote.get(proxy["https"] + "/metrics").status_code]
    assert statuses == [200, 403]
    assert [seen["path"] for seen in proxy["backend"].seen] == ["/metrics"]

