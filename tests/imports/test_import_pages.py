"""The import pages over HTTP: upload, mapping with preview, start, progress, error report,
rights, and bad files answered with a message (never a 500)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_models.entities import Company
from integrations.imports.models import ImportJob, ImportMapping

CSV = ("Название компании;ИНН;Телефон\n"
       "ООО «Вектор»;7707083893;8 495 123 45 67\n"
       "ООО «Плохой ИНН»;123;\n").encode("cp1251")


@pytest.fixture()
def import_dir(app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(app.extensions["import_runner"], "file_dir", tmp_path)
    return tmp_path


def post_file(client: Any, auth: Any, content: bytes, name: str = "c.csv",
              entity: str = "company") -> Any:
    token = auth.csrf_token("/imports/")
    return client.post("/imports/", data={"entity": entity, "csrf_token": token,
                                          "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_upload_map_run_and_report(app, db, org, auth, client, import_dir) -> None:
    auth.login("admin@test.local")
    assert "/imports/" in client.get("/").get_data(as_text=True)  # the menu link
    resp = post_file(client, auth, CSV)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    job_url = resp.location
    page = client.get(job_url).get_data(as_text=True)
    assert "ООО «Вектор»" in page and 'value="inn" selected' in page  # preview, guess
    token = auth.csrf_token(job_url)
    resp = client.post(job_url + "/start", data={
        "csrf_token": token, "col_0": "title", "col_1": "inn", "col_2": "phones",
        "policy": "skip", "mode": "real", "save_as": "Компании из 1С"})
    assert resp.status_code == 302
    assert db.scalar(select(ImportMapping.name)) == "Компании из 1С"
    # the background worker's work, done here
    assert app.extensions["import_runner"].run_once() is not None
    progress = client.get(job_url + "/progress").get_data(as_text=True)
    assert 'value="2"' in progress and "hx-get" not in progress  # finished: no polling
    page = client.get(job_url).get_data(as_text=True)
    assert "ИНН" in page and "import-errors" in page
    report = client.get(job_url + "/errors.csv")
    text = report.get_data(as_text=True)
    assert report.mimetype == "text/csv" and text.startswith("\ufeff")
    assert "3;ИНН;" in text
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Company)) == 1


def test_bad_uploads_answer_with_a_message(app, org, auth, client, import_dir) -> None:
    auth.login("admin@test.local")
    resp = post_file(client, auth, b"PK\x03\x04garbage", name="x.xlsx")
    assert resp.status_code == 422
    assert "XLSX" in resp.get_data(as_text=True)
    resp = post_file(client, auth, b"", name="x.csv")
    assert resp.status_code == 422
    token = auth.csrf_token("/imports/")
    resp = client.post("/imports/", data={"entity": "deal", "csrf_token": token})
    assert resp.status_code == 422


def test_missing_required_mapping_is_named(app, db, org, auth, client, import_dir) -> None:
    auth.login("admin@test.local")
    job_url = post_file(client, auth, CSV).location
    token = auth.csrf_token(job_url)
    resp = client.post(job_url + "/start", data={"csrf_token": token, "col_1": "inn",
                                                 "policy": "skip", "mode": "dry"})
    assert resp.status_code == 422
    assert db.scalar(select(ImportJob.status)) == "uploaded"


def test_without_the_import_right(app, org, auth, client, import_dir) -> None:
    auth.login("observer@test.local")
    assert "/imports/" not in client.get("/").get_data(as_text=True)
    assert post_file(client, auth, CSV).status_code == 403


def test_someone_elses_job_is_not_found(app, org, auth, client, import_dir) -> None:
    auth.login("admin@test.local")
    job_url = post_file(client, auth, CSV).location
    auth.logout()
    auth.login("m1@test.local")
    assert client.get(job_url).status_code == 404


def test_a_file_larger_than_the_request_limit_uploads(app, db, org, auth, client,
                                                      import_dir) -> None:
    auth.login("admin@test.local")
    line = "ООО «Компания»;7707083893;+7 495 123 45 67\n".encode("cp1251")
    big = "Название компании;ИНН;Телефон\n".encode("cp1251") + line * (
        app.config["MAX_CONTENT_LENGTH"] // len(line) + 1000)
    assert len(big) > app.config["MAX_CONTENT_LENGTH"]
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    # encoded here: the test client would spool a big body to a file it never closes
    boundary, body = encode_multipart({
        "entity": "company", "csrf_token": auth.csrf_token("/imports/"),
        "file": FileStorage(io.BytesIO(big), filename="big.csv")})
    resp = client.post("/imports/", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")
    assert resp.status_code == 302, resp.status_code
    # … still CSRF-checked
    resp = client.post("/imports/", data={"entity": "company",
                                          "file": (io.BytesIO(CSV), "c.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 400
