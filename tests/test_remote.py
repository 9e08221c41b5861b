"""Accounts, refused requests and download checks of the real-data acquisition
(ecoembed.acquire.credentials, ecoembed.acquire.remote): a missing key is one error naming the
variable before any job runs; HTTP 401/403 is never retried; an asset that is not what its
item says (file:size, file:checksum) is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests
from pystac_client.exceptions import APIError
from rasterio.errors import RasterioIOError

from ecoembed.acquire import remote
from ecoembed.acquire.credentials import MissingCredentialsError, check_credentials, key_env_of
from ecoembed.config import load_config
from tests.test_workflow import REPO, snakemake

REAL_EXAMPLE = REPO / "config" / "real_example.yaml"


def test_real_example_needs_the_planetary_computer_key_and_only_it():
    study = load_config(REAL_EXAMPLE)["stac"]
    assert key_env_of(study["s2"]) is None  # Earth Search: anonymous
    assert key_env_of(study["s1"]) == "PC_SDK_SUBSCRIPTION_KEY"
    with pytest.raises(MissingCredentialsError) as err:
        check_credentials(study, environ={})
    msg = str(err.value)
    assert msg.startswith("stac.s1: PC_SDK_SUBSCRIPTION_KEY is not set;"), msg
    assert "sentinel-1-rtc" in msg and "Run on real data" in msg and "\n" not in msg
    with pytest.raises(MissingCredentialsError):
        check_credentials(study, environ={"PC_SDK_SUBSCRIPTION_KEY": "  "})  # blank
    check_credentials(study, environ={"PC_SDK_SUBSCRIPTION_KEY": "abc"})


def test_which_sources_need_a_key():
    pc = "planetary-computer"
    # the provider marks RTC account-only; its Sentinel-2 is served anonymously
    assert key_env_of({"sign": pc, "collection": "sentinel-1-rtc"}) == "PC_SDK_SUBSCRIPTION_KEY"
    assert key_env_of({"sign": pc, "collection": "sentinel-2-l2a"}) is None
    assert key_env_of({"sign": "none", "collection": "sentinel-1-rtc"}) is None  # a mirror
    # a key the user names for any source
    src = {"sign": "none", "collection": "x", "key_env": "MY_STAC_TOKEN"}
    assert key_env_of(src) == "MY_STAC_TOKEN"
    with pytest.raises(MissingCredentialsError, match="stac.s2: MY_STAC_TOKEN is not set"):
        check_credentials({"s2": src}, environ={})


def test_workflow_without_the_key_stops_before_any_job(tmp_path, monkeypatch):
    monkeypatch.delenv("PC_SDK_SUBSCRIPTION_KEY", raising=False)
    run = snakemake(tmp_path, "-n", "gpp_eval", "--configfile", str(REAL_EXAMPLE))
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    errors = [line for line in out.splitlines() if "PC_SDK_SUBSCRIPTION_KEY is not set" in line]
    assert len(errors) == 1, out
    assert "stac_search" not in out and not (tmp_path / "results").exists(), out
    # with the key the plan builds: one search per site, then the plan table
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "k")
    run = snakemake(tmp_path, "-n", "plan", "--configfile", str(REAL_EXAMPLE))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "stac_search        3" in out and "plan               1" in out, out


# --------------------------------------------------------------------- refused requests


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b'{"detail": "not allowed"}'
    return response


def _http_error(status: int) -> requests.HTTPError:
    return requests.HTTPError("Client Error: Forbidden for url: x", response=_response(status))


@pytest.mark.parametrize(
    "exc, status",
    [
        (RasterioIOError("HTTP response code: 403"), 403),  # GDAL /vsicurl/
        (APIError.from_response(_response(401)), 401),  # pystac-client
        (_http_error(403), 403),  # requests (planetary_computer.sign)
        (OSError("HTTP Error 401: Unauthorized"), 401),  # urllib
    ],
)
def test_refused_request_is_not_retried(exc, status):
    calls, waits = [], []

    def refuse():
        calls.append(1)
        raise exc

    with pytest.raises(remote.AccessRefusedError) as err:
        remote.with_retries(
            refuse, what="load x", retries=4, backoff_s=1, sleep=waits.append, refused_hint="hint"
        )
    assert calls == [1] and waits == []
    assert str(err.value) == f"load x: access refused (HTTP {status}), not retried; hint"


def test_server_errors_are_still_retried():
    waits = []

    def busy():
        raise RasterioIOError("HTTP response code: 503")

    with pytest.raises(RuntimeError, match="failed after 3 attempt"):
        remote.with_retries(busy, what="x", retries=2, backoff_s=1, sleep=waits.append)
    assert waits == [1, 2]


def test_refused_hint_names_the_key_for_planetary_computer():
    hint = remote.refused_hint(
        {"api": "https://pc", "collection": "sentinel-1-rtc", "sign": "planetary-computer"}
    )
    assert "PC_SDK_SUBSCRIPTION_KEY" in hint
    other = remote.refused_hint({"api": "https://x", "collection": "c", "sign": "none"})
    assert "https://x" in other and "account" in other


# --------------------------------------------------------------------- download checks


@pytest.fixture
def asset_file(tmp_path):
    path = tmp_path / "vv.tif"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def _fields(path: Path, checksum: str) -> dict:
    return {"file:size": path.stat().st_size, "file:checksum": checksum}


@pytest.mark.parametrize(
    "form",
    [
        lambda b: hashlib.md5(b).hexdigest(),  # Planetary Computer: bare MD5
        lambda b: "d50110" + hashlib.md5(b).hexdigest(),  # multihash MD5
        lambda b: "1220" + hashlib.sha256(b).hexdigest(),  # multihash SHA-256
    ],
)
def test_checksum_forms(asset_file, form):
    fields = _fields(asset_file, form(asset_file.read_bytes()))
    remote.verify_asset(str(asset_file), fields, item="i", mode="auto")
    data = bytearray(asset_file.read_bytes())
    data[10] ^= 1
    asset_file.write_bytes(bytes(data))
    with pytest.raises(remote.DownloadCheckError, match=r"vv.tif \(item i\): asset's .* is "):
        remote.verify_asset(str(asset_file), fields, item="i", mode="checksum")
    remote.verify_asset(str(asset_file), fields, item="i", mode="size")  # same size: passes


def test_truncated_or_missing_asset(asset_file):
    fields = _fields(asset_file, hashlib.md5(asset_file.read_bytes()).hexdigest())
    asset_file.write_bytes(asset_file.read_bytes()[:-1])
    with pytest.raises(
        remote.DownloadCheckError, match="10239 bytes where its item says file:size 10240"
    ):
        remote.verify_asset(str(asset_file), fields, item="i", mode="size")
    asset_file.unlink()
    with pytest.raises(remote.DownloadCheckError, match="does not exist"):
        remote.verify_asset(str(asset_file), fields, item="i", mode="auto")
    remote.verify_asset(str(asset_file), fields, item="i", mode="none")
    remote.verify_asset(str(asset_file), {}, item="i", mode="checksum")  # nothing stated


def test_remote_size_is_asked_with_head_not_downloaded(monkeypatch):
    asked = []

    class Response:
        headers = {"Content-Length": "100"}

        def raise_for_status(self):
            pass

    def head(url, **kw):
        asked.append(url)
        return Response()

    monkeypatch.setattr(requests, "head", head)
    monkeypatch.setattr(requests, "get", lambda *a, **k: pytest.fail("downloaded"))
    fields = {"file:size": 100, "file:checksum": "0" * 32}
    url = "https://host/blob/vv.tif"
    remote.verify_asset(url, fields, item="i", mode="auto", signed=url + "?sig")
    assert asked == [url + "?sig"]  # the signed URL
    fields["file:size"] = 101
    with pytest.raises(
        remote.DownloadCheckError, match="100 bytes where its item says file:size 101"
    ):
        remote.verify_asset(url, fields, item="i", mode="auto")


def test_validate_config_says_when_the_key_is_missing(monkeypatch, capsys):
    from ecoembed.__main__ import main as cli

    monkeypatch.delenv("PC_SDK_SUBSCRIPTION_KEY", raising=False)
    assert cli(["validate-config", str(REAL_EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "valid, but not runnable here: stac.s1: PC_SDK_SUBSCRIPTION_KEY is not set" in err
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "k")
    assert cli(["validate-config", str(REAL_EXAMPLE)]) == 0
    assert "valid (config hash" in capsys.readouterr().out
