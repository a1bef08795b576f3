"""HTTP latency and throughput on loopback with wrk: 1, 4 and 16 concurrent keep-alive clients,
each for a bounded time, against several server configurations started and stopped in turn.

    apt-get install -y wrk
    .venv/bin/python -m bench.http_load [--seconds 8] [--configs engine-w1 engine-w2-int8 ...]

Every request is a POST /api/ask with a question from knowledge/eval/queries.jsonl (rotating).
The 1-client row is the over-HTTP latency; errors are socket errors plus non-2xx answers.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    PYTHON,
    RESULTS,
    SEED_KNOWLEDGE,
    eval_queries,
    free_port,
    fresh_index_dir,
    print_table,
    serve_command,
    serving,
    write_result,
)

LUA = """
local bodies = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/api/ask", {["Content-Type"] = "application/json"},
                    bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "non_2xx": %%d, ' ..
    '"p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # "engine", "encode" or "naive"
    workers: int
    threads: int | None  # None: the default, the usable cores shared among the workers
    quantize: bool = False
    env: dict[str, str] = field(default_factory=dict)


CONFIGS = {
    c.name: c
    for c in (
        Config("engine-w1", "engine", 1, None),
        Config("engine-w1-t1", "engine", 1, 1),
        Config("engine-w2", "engine", 2, None),
        Config("engine-w1-int8", "engine", 1, None, quantize=True),
        Config("engine-w2-int8", "engine", 2, None, quantize=True),
        Config("encode-w1", "encode", 1, None),
        Config("encode-w2", "encode", 2, None),
        Config("encode-w2-int8", "encode", 2, None, quantize=True),
        Config("naive-w1", "naive", 1, None),
    )
}


def lua_script() -> Path:
    bodies = ", ".join(json.dumps(json.dumps({"question": q})) for q, _ in eval_queries())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(LUA % bodies)
    return Path(handle.name)


def run_wrk(url: str, script: Path, clients: int, seconds: int) -> dict[str, Any]:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    found = re.search(r"WRKJSON (\{.*\})", output)
    if found is None:
        raise RuntimeError(f"no summary from wrk:\n{output}")
    raw = json.loads(found.group(1))
    return {
        "clients": clients,
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "errors": raw["socket_errors"] + raw["non_2xx"],
        "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
    }


def command_for(config: Config, port: int) -> tuple[list[str], dict[str, str]]:
    index = RESULTS / f"index-seed-{'int8' if config.quantize else 'fp32'}"
    if not (index / "CURRENT").exists():
        fresh_index_dir(index)
    env = {"PLAYBOOK_KNOWLEDGE_DIR": str(SEED_KNOWLEDGE), "PLAYBOOK_INDEX_DIR": str(index),
           "PLAYBOOK_WORKERS": str(config.workers), "PLAYBOOK_QUANTIZE": str(int(config.quantize)),
           "PLAYBOOK_DB_PATH": str(RESULTS / "feedback.sqlite3"), **config.env}
    if config.threads is not None:
        env["PLAYBOOK_THREADS"] = str(config.threads)
    if config.kind == "engine":
        return serve_command(port, config.workers), env
    env["BENCH_MODE"] = config.kind
    return [PYTHON, "-m", "uvicorn", "--factory", "bench._bench_app:make_app", "--port", str(port),
            "--workers", str(config.workers), "--log-level", "warning"], env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="per wrk run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    script = lua_script()
    results: dict[str, Any] = {}
    rows = []
    for name in args.configs:
        config = CONFIGS[name]
        port = free_port()
        command, env = command_for(config, port)
        with serving(command, env, port) as server:
            runs = [run_wrk(server.url, script, c, args.seconds) for c in args.clients]
            rss = server.peak_rss_mb()
        results[name] = {"config": config.__dict__, "runs": runs, "peak_rss_mb": rss,
                         "ready_after_s": server.ready_after}
        for run in runs:
            rows.append([name, run["clients"], run["requests_per_s"], run["errors"],
                         run["p50_ms"], run["p95_ms"], run["p99_ms"], rss])
        print(f"{name}: " + ", ".join(f"{r['clients']} clients {r['requests_per_s']:.0f} req/s"
                                      for r in runs), flush=True)
    print_table(f"HTTP POST /api/ask on loopback (wrk, {args.seconds} s per row; w = uvicorn "
                "workers, t = inference threads for a lone query; default: cores / workers)",
                ["config", "clients", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms",
                 "peak RSS MB"], rows)
    script.unlink()
    write_result("http_load", {"seconds": args.seconds, "configs": results})


if __name__ == "__main__":
    main()
