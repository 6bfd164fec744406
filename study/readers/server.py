"""`study readers serve`: the blinded reading web app of a reader folder (plain Starlette, no build step).

Routes (token = the reader's secret from readers.json; an unknown or absent token is 403 and nothing else):
    GET  /r/{token}                                 the reader's page (HTML + a little vanilla JS, study.readers.page)
    GET  /api/{token}/state                         progress and the next case (first unfinished in the reader's order)
    POST /api/{token}/answer                        {"case_id", "answers": {criterion: int}} → stored at once → state
    GET  /img/{token}/{case_id}/{role}/{window}     a PNG, looked up through cases.json (exact keys only)
Nothing serves a file by a path from the request; key.json is never opened; readers.json, answers.sqlite and the
design's results folder are never served; any other address is 403. Each reader sees and writes their own answers only.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from study.errors import StudyError
from study.readers.layout import ANSWERS, CASES, DESIGN, READERS, criteria_ids, read_json, reader_order
from study.readers.store import AnswerStore

SECURE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                  "X-Frame-Options": "DENY"}
MAX_BODY = 64 * 1024
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ReaderStudy:
    """The served state of one reader folder: design, cases, tokens and image files read once; answers in sqlite."""

    def __init__(self, reader_dir: Path):
        self.dir = Path(reader_dir).resolve()
        self.design = read_json(self.dir, DESIGN)
        cases = read_json(self.dir, CASES)
        readers = read_json(self.dir, READERS)
        try:
            self.kind, self.seed = self.design["design"], int(self.design["seed"])
            self.criteria = criteria_ids(self.design)
            self.case_ids = [c["case_id"] for c in cases]
            self.tokens = [(str(name), str(info["token"]).encode()) for name, info in readers.items()]
            self.images = {c["case_id"]: self._image_files(c["images"]) for c in cases}
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise StudyError(f"{self.dir}: not a valid reader folder ({type(err).__name__}: {err})") from None
        if self.kind not in ("likert", "2afc") or not self.tokens or not self.case_ids:
            raise StudyError(f"{self.dir}: design must be likert or 2afc, with readers and cases")
        if any(len(secret) < 16 for _, secret in self.tokens) or len({s for _, s in self.tokens}) < len(self.tokens):
            raise StudyError(f"{self.dir / READERS}: every reader needs a token of its own, 16 characters or more")
        self.store = AnswerStore(self.dir / ANSWERS)

    def _image_files(self, images: dict) -> dict:
        """{role: {window: Path}}, each a .png directly inside images/ of the folder (else a StudyError)."""
        root = (self.dir / "images").resolve()
        out = {}
        for role, windows in images.items():
            out[role] = {}
            for window, rel in windows.items():
                path = (self.dir / rel).resolve()
                if path.parent != root or path.suffix != ".png" or not path.is_file():
                    raise StudyError(f"{self.dir / CASES}: image {rel!r} is not a .png file inside images/")
                out[role][window] = path
        return out

    def reader(self, token: str | None) -> str | None:
        """The reader whose secret is `token` (compared in constant time with every reader's), else None."""
        if not token:
            return None
        given, found = token.encode(), None
        for name, secret in self.tokens:
            if secrets.compare_digest(given, secret):
                found = name
        return found

    def public_design(self) -> dict:
        """What the page needs of design.json: no seed, no results folder."""
        d = self.design
        return {"design": self.kind, "criteria": d.get("criteria", []) if self.kind == "likert" else [],
                "windows": d.get("windows", []), "show": d.get("show", []),
                "question": d.get("question_2afc", "") if self.kind == "2afc" else ""}

    def state(self, name: str, token: str) -> dict:
        """Progress of one reader and the first case in their order they have not finished (None when all are)."""
        answers = self.store.answers_of(name)
        done_ids = {c for c, a in answers.items() if all(k in a for k in self.criteria)}
        order = reader_order(self.seed, name, len(self.case_ids))
        nxt = None
        for k, i in enumerate(order):
            case_id = self.case_ids[i]
            if case_id not in done_ids:
                images = {role: {w: f"/img/{token}/{case_id}/{role}/{w}" for w in windows}
                          for role, windows in self.images[case_id].items()}
                nxt = {"index": k, "case_id": case_id, "images": images, "answers": answers.get(case_id, {})}
                break
        design = self.public_design()
        return {"reader": name, "n_cases": len(self.case_ids), "done": sum(c in done_ids for c in self.case_ids),
                "next": nxt, "criteria": self.criteria, "windows": design["windows"], "design": design,
                "question": design["question"]}

    def validate(self, body) -> str | None:
        """The reason an answer body is refused, or None when it is valid."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if not isinstance(body.get("case_id"), str) or body["case_id"] not in self.images:
            return "unknown case_id"
        answers = body.get("answers")
        if not isinstance(answers, dict) or not answers:
            return "answers must be a non-empty object {criterion: value}"
        allowed = (0, 1) if self.kind == "2afc" else (1, 2, 3, 4, 5)
        for criterion, value in answers.items():
            if criterion not in self.criteria:
                return f"unknown criterion (expected {', '.join(self.criteria)})"
            if type(value) is not int or value not in allowed:
                return f"{criterion}: value must be one of {', '.join(map(str, allowed))}"
        return None


def _forbidden() -> Response:
    return PlainTextResponse("forbidden", status_code=403, headers=SECURE_HEADERS)


def make_app(reader_dir: Path) -> Starlette:
    """The web app serving the reader folder `reader_dir` (read once, here; key.json is never opened)."""
    from study.readers.page import PAGE

    study = ReaderStudy(reader_dir)

    def page(request: Request) -> Response:
        if study.reader(request.path_params["token"]) is None:
            return _forbidden()
        return HTMLResponse(PAGE, headers={**SECURE_HEADERS, "Content-Security-Policy":
                                           "default-src 'self'; script-src 'unsafe-inline'; "
                                           "style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'"})

    def state(request: Request) -> Response:
        token = request.path_params["token"]
        name = study.reader(token)
        if name is None:
            return _forbidden()
        return JSONResponse(study.state(name, token), headers=SECURE_HEADERS)

    async def answer(request: Request) -> Response:
        token = request.path_params["token"]
        name = study.reader(token)
        if name is None:
            return _forbidden()
        raw = await request.body()
        try:
            body = json.loads(raw) if len(raw) <= MAX_BODY else None
        except ValueError:
            body = None
        reason = study.validate(body)
        if reason is not None:
            return JSONResponse({"error": reason}, status_code=400, headers=SECURE_HEADERS)
        await run_in_threadpool(study.store.record_many, name, body["case_id"], body["answers"])
        return JSONResponse(await run_in_threadpool(study.state, name, token), headers=SECURE_HEADERS)

    def image(request: Request) -> Response:
        p = request.path_params
        if study.reader(p["token"]) is None:
            return _forbidden()
        path = study.images.get(p["case_id"], {}).get(p["role"], {}).get(p["window"])
        if path is None:
            return PlainTextResponse("not found", status_code=404, headers=SECURE_HEADERS)
        return Response(path.read_bytes(), media_type="image/png", headers=SECURE_HEADERS)

    routes = [Route("/r/{token}", page), Route("/api/{token}/state", state),
              Route("/api/{token}/answer", answer, methods=["POST"]),
              Route("/img/{token}/{case_id}/{role}/{window}", image),
              Route("/{rest:path}", lambda request: _forbidden(), methods=ALL_METHODS)]  # anything else, an absent token included
    return Starlette(routes=routes)


def serve(reader_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Print one link per reader, then serve the folder with uvicorn until stopped (access log off: it would show
    the readers' secrets)."""
    import socket

    import uvicorn

    app = make_app(reader_dir)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise StudyError(f"cannot listen on {host}:{port} ({err.strerror or err}) — is another server on it? "
                         "Choose another --port") from None
    readers = read_json(Path(reader_dir), READERS)
    shown = f"[{host}]" if ":" in host else host
    for name, info in readers.items():
        print(f"{name}: http://{shown}:{port}/r/{info['token']}", flush=True)
    if host in ("127.0.0.1", "localhost", "::1"):
        print(f"listening on {shown}:{port}, loopback only (this machine); --host 0.0.0.0 lets other machines "
              "connect", flush=True)
    else:
        print(f"listening on {shown}:{port}: other machines can connect — the links are secrets, share each with "
              "its reader only", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

