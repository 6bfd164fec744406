"""`study readers serve` (issue #20 item 2): the reading app of a hand-built reader folder — the page, answers in
sqlite the moment they are posted, resume, refusals (tokens, another reader, path traversal, invalid values), key.json
never opened, and a real server killed with SIGKILL and restarted with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from helpers import free_port as _free_port
from helpers.readers import MARKER, build_folder, order_of, start_server as _start
from study.readers.layout import QUESTION_2AFC
from study.readers.server import make_app

OPENED_KEY: list = []  # paths named key.json opened while WATCH is on (audit hook below)
WATCH: list = []


def _audit(event, args):
    if WATCH and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.fsdecode(args[0]).endswith("key.json"):
            OPENED_KEY.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def db_rows(root: Path, reader: str | None = None) -> dict:
    """{(reader, case_id, criterion): value} read straight from answers.sqlite."""
    with sqlite3.connect(root / "answers.sqlite") as con:
        rows = con.execute("SELECT reader, case_id, criterion, value FROM answers").fetchall()
    return {(r, c, k): v for r, c, k, v in rows if reader is None or r == reader}


def full(f: dict, value: int = 3) -> dict:
    return {c: value for c in f["criteria"]}


@pytest.fixture
def likert(tmp_path):
    return build_folder(tmp_path / "likert")


@pytest.fixture
def client(likert):
    with TestClient(make_app(likert["root"])) as c:
        yield c


def test_page_and_images_load_for_a_valid_token(likert, client):
    tok = likert["tokens"]["alice"]
    r = client.get(f"/r/{tok}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/api/" in r.text and r.headers["cache-control"] == "no-store"
    state = client.get(f"/api/{tok}/state").json()
    assert state["reader"] == "alice" and state["n_cases"] == 4 and state["done"] == 0
    assert state["criteria"] == likert["criteria"] and [w["id"] for w in state["windows"]] == ["soft", "liver", "bone"]
    assert "results_dir" not in json.dumps(state) and str(likert["root"]) not in json.dumps(state)
    nxt = state["next"]
    assert (nxt["index"], nxt["case_id"]) == (0, order_of(likert, "alice")[0])
    assert set(nxt["images"]) == {"output", "low_dose", "full_dose"}
    img = client.get(nxt["images"]["output"]["liver"])
    assert img.status_code == 200 and img.content == likert["files"][(nxt["case_id"], "output", "liver")]
    assert img.headers["content-type"] == "image/png" and img.headers["cache-control"] == "no-store"
    assert img.headers["x-content-type-options"] == "nosniff"


def test_answers_are_in_sqlite_the_moment_they_are_posted(likert, client):
    tok, case = likert["tokens"]["alice"], likert["case_ids"][2]
    r = client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": {"noise": 4}})
    assert r.status_code == 200
    assert db_rows(likert["root"]) == {("alice", case, "noise"): 4}
    client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": full(likert, 2)})
    assert db_rows(likert["root"]) == {("alice", case, c): 2 for c in likert["criteria"]}
    with sqlite3.connect(likert["root"] / "answers.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_resume_at_the_first_unfinished_case_in_the_readers_order(likert, client):
    tok, order = likert["tokens"]["bob"], order_of(likert, "bob")
    for case in (order[0], order[2]):
        client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": full(likert)})
    state = client.post(f"/api/{tok}/answer", json={"case_id": order[1], "answers": {"noise": 5}}).json()
    assert (state["done"], state["next"]["index"], state["next"]["case_id"]) == (2, 1, order[1])
    assert state["next"]["answers"] == {"noise": 5}
    with TestClient(make_app(likert["root"])) as again:  # a new server on the same folder
        assert again.get(f"/api/{tok}/state").json()["next"]["case_id"] == order[1]
    client.post(f"/api/{tok}/answer", json={"case_id": order[1], "answers": full(likert)})
    assert client.get(f"/api/{tok}/state").json()["next"]["case_id"] == order[3]


def test_absent_or_wrong_tokens_are_refused_on_every_route(likert, client):
    case = likert["case_ids"][0]
    for tok in ("", "x", likert["tokens"]["alice"][:-1], likert["tokens"]["alice"] + "A", "é" * 43):
        for method, url in (("GET", f"/r/{tok}"), ("GET", f"/api/{tok}/state"), ("POST", f"/api/{tok}/answer"),
                            ("GET", f"/img/{tok}/{case}/output/soft")):
            r = client.request(method, url, json={"case_id": case, "answers": full(likert)})
            assert r.status_code == 403, (method, url)
            assert r.text == "forbidden"
    assert client.get("/").status_code == 403
    assert not (likert["root"] / "answers.sqlite").exists() or db_rows(likert["root"]) == {}


def test_a_reader_cannot_read_or_write_another_readers_answers(likert, client):
    a, b = likert["tokens"]["alice"], likert["tokens"]["bob"]
    case = order_of(likert, "alice")[0]
    client.post(f"/api/{b}/answer", json={"case_id": case, "answers": full(likert, 5)})
    bob_before = db_rows(likert["root"], "bob")
    state = client.post(f"/api/{a}/answer", json={"case_id": case, "answers": full(likert, 1), "reader": "bob"}).json()
    assert db_rows(likert["root"], "bob") == bob_before
    assert db_rows(likert["root"], "alice") == {("alice", case, c): 1 for c in likert["criteria"]}
    text = json.dumps(client.get(f"/api/{a}/state").json()) + json.dumps(state)
    assert "bob" not in text and b not in text and state["done"] == 1
    assert client.get(f"/api/{b}/state").json()["done"] == 1


def test_path_traversal_and_files_by_name_are_refused(likert, client):
    tok, case = likert["tokens"]["alice"], likert["case_ids"][0]
    rel = json.loads((likert["root"] / "cases.json").read_text())[0]["images"]["output"]["soft"]
    urls = [f"/img/{tok}/..%2F..%2Fkey.json/x/y", f"/img/{tok}/{case}/../../readers.json",
            f"/img/{tok}/{case}/..%2F..%2Freaders.json/soft", f"/img/{tok}/{case}/output/..%2F..%2Fkey.json",
            f"/img/{tok}/%2e%2e/%2e%2e/key.json/soft", f"/img/{tok}/..%252F..%252Fkey.json/output/soft",
            f"/img/{tok}/{case}/output/%2e%2e%2fkey.json", f"/img/{tok}/{case}/output/soft%00",
            f"/img/{tok}/{case}/output/{rel}", f"/img/{tok}/{case}/images/soft", f"/img/{tok}/{case}/key/soft",
            "/key.json", "/readers.json", "/answers.sqlite", "/design.json", "/cases.json", f"/{rel}",
            f"/r/{tok}/../../key.json", f"/api/{tok}/../../readers.json", f"/static/{tok}/key.json"]
    secret_bits = [MARKER, *likert["tokens"].values()]
    for url in urls:
        r = client.get(url)
        assert r.status_code in (403, 404), url
        assert not any(s in r.text for s in secret_bits) and b"PNG" not in r.content, url


def test_invalid_answers_are_refused_with_400(likert, client):
    tok, case = likert["tokens"]["alice"], likert["case_ids"][0]
    bad = [{"case_id": case, "answers": {"noise": v}} for v in (0, 6, -1, "3", 3.0, True, None)]
    bad += [{"case_id": "nope", "answers": {"noise": 3}}, {"case_id": case, "answers": {"choice": 1}},
            {"case_id": case, "answers": {"../key": 3}}, {"case_id": case, "answers": {}}, {"case_id": case},
            {"answers": {"noise": 3}}, [case], "x", {"case_id": case, "answers": [3]}]
    for body in bad:
        r = client.post(f"/api/{tok}/answer", json=body)
        assert r.status_code == 400 and "error" in r.json(), body
    assert client.post(f"/api/{tok}/answer", content=b"{not json").status_code == 400
    assert client.post(f"/api/{tok}/answer", content=b" " * 70000).status_code == 400
    assert db_rows(likert["root"]) == {}


def test_2afc_folder(tmp_path):
    f = build_folder(tmp_path / "afc", design="2afc", n_cases=2)
    tok = f["tokens"]["alice"]
    with TestClient(make_app(f["root"])) as client:
        assert client.get(f"/r/{tok}").status_code == 200
        state = client.get(f"/api/{tok}/state").json()
        assert state["criteria"] == ["choice"] and state["design"]["design"] == "2afc"
        assert state["question"] == QUESTION_2AFC and set(state["next"]["images"]) == {"a", "b", "low_dose", "full_dose"}
        case = state["next"]["case_id"]
        for v in (2, -1, True):
            assert client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": {"choice": v}}).status_code == 400
        assert client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": {"noise": 3}}).status_code == 400
        state = client.post(f"/api/{tok}/answer", json={"case_id": case, "answers": {"choice": 1}}).json()
        assert state["done"] == 1 and state["next"]["case_id"] == order_of(f, "alice")[1]
        assert db_rows(f["root"]) == {("alice", case, "choice"): 1}
        client.post(f"/api/{tok}/answer", json={"case_id": state["next"]["case_id"], "answers": {"choice": 0}})
        assert client.get(f"/api/{tok}/state").json()["next"] is None


def test_key_json_is_never_opened(likert, tmp_path):
    if os.getuid() != 0:
        (likert["root"] / "key.json").chmod(0)
    OPENED_KEY.clear()
    WATCH.append(True)
    try:
        with TestClient(make_app(likert["root"])) as client:
            for name, tok in likert["tokens"].items():
                client.get(f"/r/{tok}")
                state = client.get(f"/api/{tok}/state").json()
                for windows in state["next"]["images"].values():
                    for url in windows.values():
                        assert client.get(url).status_code == 200
                client.post(f"/api/{tok}/answer", json={"case_id": state["next"]["case_id"], "answers": full(likert)})
                client.get(f"/img/{tok}/..%2F..%2Fkey.json/x/y")
                client.get(f"/img/{tok}/{likert['case_ids'][0]}/../../key.json")
        (tmp_path / "probe-key.json").write_text("x")  # the hook itself works
        assert OPENED_KEY == [str(tmp_path / "probe-key.json")]
    finally:
        WATCH.clear()
        (likert["root"] / "key.json").chmod(0o644)


def _raw_get(port: int, path: str) -> bytes:
    """An HTTP request with the path exactly as given (no client normalises its dot segments)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_a_killed_server_loses_no_answer(likert):
    root, tok, port = likert["root"], likert["tokens"]["alice"], _free_port()
    order, base = order_of(likert, "alice"), f"http://127.0.0.1:{port}"
    proc = _start(root, port, tok)
    try:
        for case in order[:2]:
            assert httpx.post(f"{base}/api/{tok}/answer", json={"case_id": case, "answers": full(likert)}).status_code == 200
        for path in (f"/img/{tok}/{order[0]}/../../readers.json", f"/img/{tok}/../../key.json/output/soft",
                     f"/img/{tok}/{order[0]}/output/../../../key.json", "/../key.json"):
            reply = _raw_get(port, path)
            assert reply.split(b" ")[1] in (b"400", b"403", b"404"), path
            assert MARKER.encode() not in reply and likert["tokens"]["bob"].encode() not in reply, path
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode()
    assert f"http://127.0.0.1:{port}/r/{tok}" in out and "loopback" in out
    proc = _start(root, port, tok)
    try:
        state = httpx.post(f"{base}/api/{tok}/answer", json={"case_id": order[2], "answers": full(likert)}).json()
        assert (state["done"], state["next"]["index"], state["next"]["case_id"]) == (3, 3, order[3])
        assert httpx.get(f"{base}/api/{tok}/state").json()["next"]["case_id"] == order[3]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert db_rows(root) == {("alice", c, k): 3 for c in order[:3] for k in likert["criteria"]}


def test_a_folder_that_breaks_the_contract_is_a_one_line_error(tmp_path, likert):
    from study.errors import StudyError

    with pytest.raises(StudyError, match="not found"):
        make_app(tmp_path / "missing")
    good = (likert["root"] / "cases.json").read_text()
    for rel in ("key.json", "images/../key.json", "images/missing.png", "/etc/passwd"):
        cases = json.loads(good)
        cases[0]["images"]["output"]["soft"] = rel
        (likert["root"] / "cases.json").write_text(json.dumps(cases))
        with pytest.raises(StudyError, match="inside images/"):
            make_app(likert["root"])
    (likert["root"] / "cases.json").write_text(good)
    (likert["root"] / "readers.json").write_text(json.dumps({"alice": {"token": "short"}}))
    with pytest.raises(StudyError, match="token"):
        make_app(likert["root"])


def test_a_port_in_use_is_a_one_line_error(likert):
    from study.errors import StudyError
    from study.readers.server import serve

    with socket.create_server(("127.0.0.1", 0)) as busy:
        with pytest.raises(StudyError, match="cannot listen on 127.0.0.1"):
            serve(likert["root"], port=busy.getsockname()[1])
