"""A build killed with SIGKILL at any point leaves the previous index current and loadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.config import Settings
from app.index.build import build_index
from app.index.format import CURRENT_FILE, load_index
from app.knowledge.playbook import load_knowledge
from tests.fakes import FakeEmbedder

# The child builds a changed playbook, announces each stage on stdout, then stalls there
# so the parent can kill it at exactly that stage.
CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    import app.index.build as build
    import app.index.format as index
    from app.knowledge.playbook import load_knowledge
    from pathlib import Path
    from tests.fakes import FakeEmbedder

    stage = {stage!r}
    class SlowEmbedder(FakeEmbedder):
        def encode(self, texts):
            if stage == "encoding":
                print("encoding", flush=True); time.sleep(60)
            return super().encode(texts)

    real_replace = index.os.replace
    def stalled_replace(src, dst):
        if stage == "publishing" and Path(dst).parent.name == "builds":
            print("publishing", flush=True); time.sleep(60)
        return real_replace(src, dst)
    index.os.replace = stalled_replace

    kb = load_knowledge(Path({knowledge!r})).with_alternate("cancel-order", "abort the order")
    build.build_index(kb, SlowEmbedder(), Path({index_dir!r}))
    print("finished", flush=True)
""")


@pytest.mark.parametrize("stage", ["encoding", "publishing"])
def test_sigkill_mid_build_keeps_previous_index(tiny_settings: Settings, stage: str) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    previous = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    script = CHILD.format(root=str(Path(__file__).resolve().parent.parent), stage=stage,
                          knowledge=str(tiny_settings.knowledge_dir),
                          index_dir=str(tiny_settings.index_dir))
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == stage
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL

    current = (tiny_settings.index_dir / CURRENT_FILE).read_text().strip()
    assert current == previous.manifest.build_id
    assert load_index(tiny_settings.index_dir).manifest == previous.manifest
    # The next build succeeds and cleans up after itself.
    rebuilt = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    assert load_index(tiny_settings.index_dir).manifest == rebuilt.manifest
