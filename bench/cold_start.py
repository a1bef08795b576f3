"""Cold start: process start to the first answered POST /api/ask, with a warm ONNX export cache
and a built index (the usual restart), for `playbook serve` on ONNX and, for contrast, on torch.

    .venv/bin/python -m bench.cold_start [--repeat 3]

Also reports which heavy modules the serving process has imported once ready (torch,
transformers and sentence-transformers must be absent on the ONNX path) and the slowest imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from typing import Any

from bench._common import (
    PYTHON,
    RESULTS,
    ROOT,
    SEED_KNOWLEDGE,
    free_port,
    fresh_index_dir,
    print_table,
    serve_command,
    serving,
    write_result,
)

HEAVY = ("torch", "transformers", "sentence_transformers", "onnx", "sklearn", "scipy",
         "matplotlib", "pandas")

PROBE = """
import json, sys, time
started = time.perf_counter()
from app.cli.main import main  # what `playbook serve` imports first
from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
imported = time.perf_counter()
settings = Settings()
engine = Engine.open(settings)
opened = time.perf_counter()
create_app(settings, engine)
print(json.dumps({"import_s": imported - started, "engine_open_s": opened - imported,
                  "create_app_s": time.perf_counter() - opened, "encoder": engine.embedder.encoder,
                  "heavy_modules": [m for m in %r if m in sys.modules]}))
"""


def slowest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Cumulative import time (s) of the app's own modules and the heaviest libraries."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", "import app.cli.main, app.web.app"],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if cumulative.isdigit() and name.count(".") == 0:  # top-level packages only
            rows.append((name, int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch contrast")
    args = parser.parse_args()
    import os

    index = RESULTS / "index-seed-fp32"
    if not (index / "CURRENT").exists():
        fresh_index_dir(index)
    env = {"PLAYBOOK_KNOWLEDGE_DIR": str(SEED_KNOWLEDGE), "PLAYBOOK_INDEX_DIR": str(index),
           "PLAYBOOK_DB_PATH": str(RESULTS / "feedback.sqlite3")}
    full_env = {**os.environ, **env}
    probe = subprocess.run([PYTHON, "-c", PROBE % (HEAVY,)], capture_output=True, text=True,
                           cwd=ROOT, env=full_env, check=True)
    phases: dict[str, Any] = json.loads(probe.stdout.strip().splitlines()[-1])
    encoders = ["onnx"] if args.no_torch else ["onnx", "torch"]
    results: dict[str, Any] = {"phases": phases, "slowest_imports": slowest_imports(full_env)}
    rows = []
    for encoder in encoders:
        times = []
        for _ in range(args.repeat if encoder == "onnx" else 1):
            port = free_port()
            with serving(serve_command(port), {**env, "PLAYBOOK_ENCODER": encoder}, port) as s:
                times.append(s.ready_after)
                rss = s.peak_rss_mb()
        results[encoder] = {"seconds": times, "median_s": statistics.median(times),
                            "peak_rss_mb": rss}
        rows.append([encoder, len(times), statistics.median(times), min(times), max(times), rss])
    print_table("Cold start: `playbook serve` process start -> first answered POST /api/ask "
                "(warm export cache, index built)",
                ["encoder", "runs", "median s", "min s", "max s", "peak RSS MB"], rows)
    print_table("Inside the ONNX start-up (one probe process)", ["phase", "seconds"],
                [["import app.cli.main + app.web.app", phases["import_s"]],
                 ["Engine.open (encoder + index)", phases["engine_open_s"]],
                 ["create_app", phases["create_app_s"]],
                 ["heavy modules imported", ", ".join(phases["heavy_modules"]) or "none"]])
    print_table("Slowest top-level imports of `app.cli.main, app.web.app` (cumulative s)",
                ["package", "seconds"], results["slowest_imports"])
    write_result("cold_start", results)


if __name__ == "__main__":
    main()
