"""A reader folder built by hand (the contract of study/readers/layout.py) and a real `study readers serve` process,
for the reader-study tests."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from helpers import REPO
from study.readers.layout import DEFAULT_CRITERIA, DEFAULT_WINDOWS, QUESTION_2AFC, criteria_ids, reader_order

MARKER = "UNBLINDING-KEY-MARKER"
SEED = 7


def build_folder(root: Path, design: str = "likert", n_cases: int = 4, readers=("alice", "bob")) -> dict:
    """A reader folder by hand, following the contract; returns its parts (tokens, case ids, image files)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    show = ["low_dose", "full_dose"]
    roles = (["a", "b"] if design == "2afc" else ["output"]) + show
    cases, files = [], {}
    for _ in range(n_cases):
        case_id = secrets.token_hex(8)
        images = {}
        for role in roles:
            for w in DEFAULT_WINDOWS:
                rel = f"images/{secrets.token_hex(16)}.png"
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(root / rel)
                images.setdefault(role, {})[w["id"]] = rel
                files[(case_id, role, w["id"])] = (root / rel).read_bytes()
        cases.append({"case_id": case_id, "images": images})
    design_obj = {"version": 1, "design": design, "seed": SEED, "results_dir": str(root / "results"),
                  "criteria": DEFAULT_CRITERIA, "windows": DEFAULT_WINDOWS, "show": show, "question_2afc": QUESTION_2AFC}
    tokens = {name: secrets.token_urlsafe(32) for name in readers}
    (root / "design.json").write_text(json.dumps(design_obj))
    (root / "cases.json").write_text(json.dumps(cases))
    (root / "readers.json").write_text(json.dumps({n: {"token": t} for n, t in tokens.items()}))
    (root / "key.json").write_text(json.dumps({c["case_id"]: {"patient": MARKER, "run_key": MARKER} for c in cases}))
    return {"root": root, "tokens": tokens, "case_ids": [c["case_id"] for c in cases], "files": files,
            "criteria": criteria_ids(design_obj)}


def order_of(f: dict, name: str) -> list[str]:
    return [f["case_ids"][i] for i in reader_order(SEED, name, len(f["case_ids"]))]


def start_server(root: Path, port: int, tok: str) -> subprocess.Popen:
    """`python -m study readers serve ROOT --port PORT` (the bare server where the CLI has no `serve` yet), ready."""
    cli = (REPO / "study" / "cli" / "readers.py")
    if cli.exists() and 'command("serve")' in cli.read_text():
        cmd = [sys.executable, "-m", "study", "readers", "serve", str(root), "--port", str(port)]
    else:
        cmd = [sys.executable, "-c", f"from study.readers.server import serve; serve({str(root)!r}, port={port})"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/{tok}/state", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.communicate()[0].decode()[-2000:]}")
