"""Talking to STAC sources over the network: retries, refused access, signing, and checking
what was fetched against what the item says of it (``file:size``, ``file:checksum``).

A refused request (HTTP 401 or 403) is permanent: trying again only delays the error, so
it is raised at once with what the user has to do about it. Everything else a flaky
network raises is retried with a doubling wait.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rasterio.errors import RasterioError

from ecoembed.acquire.credentials import credential_hint
from ecoembed.io.errors import InputDataError
from ecoembed.io.stac import is_local, local_path

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a flaky network raises: HTTP and connection errors (pystac-client's APIError,
# requests' and urllib's), and GDAL failing to read a remote COG.
try:  # pystac-client is a dependency, but keep the error list importable without it
    from pystac_client.exceptions import APIError
except ImportError:  # pragma: no cover
    APIError = OSError  # type: ignore[assignment,misc]
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, RasterioError, APIError)
REFUSED_STATUS = (401, 403)

# How the libraries spell an HTTP status in their messages: GDAL's /vsicurl/ ("HTTP
# response code: 403"), requests ("403 Client Error: Forbidden"), urllib ("HTTP Error 401").
_STATUS_IN_MESSAGE = re.compile(
    r"HTTP response code:\s*(\d{3})|\b(\d{3}) Client Error|HTTP Error (\d{3})|status code:? (\d{3})"
)


class AccessRefusedError(PermissionError):
    """The source refused the request (HTTP 401/403): a missing or wrong key, not a fault
    of the network. Never retried."""


class DownloadCheckError(InputDataError):
    """A fetched asset is not what its item says (size or checksum)."""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error, where the error (or its cause) tells it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for holder in (exc, getattr(exc, "response", None)):
            code = getattr(holder, "status_code", None)
            if isinstance(code, int):
                return code
        m = _STATUS_IN_MESSAGE.search(str(exc))
        if m:
            return int(next(g for g in m.groups() if g))
        exc = exc.__cause__ or exc.__context__
    return None


def with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    retries: int,
    backoff_s: float,
    errors: tuple[type[BaseException], ...] = NETWORK_ERRORS,
    sleep: Callable[[float], None] = time.sleep,
    refused_hint: str = "",
) -> T:
    """``fn()``, tried again after ``backoff_s``, 2 x, 4 x ... on network errors.

    The last error propagates, with ``what`` and the number of attempts in front of it. A
    refusal (HTTP 401/403) is raised at once as :class:`AccessRefusedError`, with
    ``refused_hint`` (what to do about it) in its message.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except errors as exc:
            status = http_status(exc)
            if status in REFUSED_STATUS:
                hint = f"; {refused_hint}" if refused_hint else ""
                raise AccessRefusedError(
                    f"{what}: access refused (HTTP {status}), not retried{hint}"
                ) from exc
            if attempt == retries:
                raise RuntimeError(f"{what}: failed after {attempt + 1} attempt(s): {exc}") from exc
            wait = backoff_s * 2**attempt
            log.warning(
                "%s: %s; attempt %d of %d in %.1f s", what, exc, attempt + 2, retries + 1, wait
            )
            sleep(wait)
    raise AssertionError("unreachable")


def href_signer(
    sign: str, key_env: str | None = None, environ: Mapping[str, str] | None = None
) -> Callable[[str], str] | None:
    """The URL signer of a source: None, or Planetary Computer's SAS token signing (with the
    subscription key from ``key_env`` where one is configured)."""
    if sign == "none":
        return None
    if sign == "planetary-computer":
        try:
            import planetary_computer
        except ImportError as exc:
            raise RuntimeError(
                "stac sources with sign: planetary-computer need the planetary-computer "
                "package: pip install -e '.[pc]'"
            ) from exc
        env = os.environ if environ is None else environ
        if key_env and env.get(key_env):
            planetary_computer.set_subscription_key(env[key_env])
        return planetary_computer.sign
    raise ValueError(f"unknown signing {sign!r} (none or planetary-computer)")


def refused_hint(source: Mapping[str, Any]) -> str:
    """What to tell a user whose request a source refused."""
    return credential_hint(source) or (
        f"the source {source.get('api')} refuses anonymous access to "
        f"{source.get('collection')}: check its terms and whether it needs an account"
    )


# ---------------------------------------------------------------------------- download checks

# Multihash prefixes (hex) of the hash functions the STAC file extension's examples use.
_MULTIHASH = {"1220": "sha256", "1340": "sha512", "1114": "sha1", "d50110": "md5"}


def _checksum_algorithm(checksum: str) -> tuple[str, str]:
    """(hashlib name, hex digest) of a ``file:checksum``: a multihash as the file extension
    says, or a bare MD5 hex digest as Planetary Computer's items carry."""
    value = checksum.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", value):
        raise ValueError(f"file:checksum {checksum!r} is not hexadecimal")
    for prefix, name in _MULTIHASH.items():
        size = hashlib.new(name).digest_size * 2
        if value.startswith(prefix) and len(value) == len(prefix) + size:
            return name, value[len(prefix) :]
    if len(value) == 32:
        return "md5", value
    raise ValueError(f"file:checksum {checksum!r}: unknown multihash")


def remote_size(url: str, timeout_s: float = 30.0) -> int | None:
    """The size the server reports for ``url`` (HTTP HEAD), or None where it says none."""
    import requests

    response = requests.head(url, allow_redirects=True, timeout=timeout_s)
    response.raise_for_status()
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def verify_asset(
    href: str,
    asset: Mapping[str, Any],
    *,
    item: str,
    mode: str,
    signed: str | None = None,
) -> None:
    """Check a source asset against its item's ``file:size`` / ``file:checksum``.

    ``mode``: ``none``; ``size`` (the file's size, from the file system or an HTTP HEAD);
    ``checksum`` (size, then a hash of the whole file: it reads the whole asset, where the
    acquisition itself reads only the windows over the tile); ``auto``: checksum for
    local files, size for remote ones. ``signed`` is the URL to ask, if it differs.
    """
    if mode == "none":
        return
    size = asset.get("file:size")
    checksum = asset.get("file:checksum")
    if size is None and checksum is None:
        return
    local = is_local(href)
    if mode == "auto":
        mode = "checksum" if local else "size"
    if size is not None:
        if local:
            path = Path(local_path(href))
            if not path.is_file():
                raise DownloadCheckError(href, "asset file does not exist", item=item)
            got = path.stat().st_size
        else:
            got = remote_size(signed or href)
        if got is not None and got != int(size):
            raise DownloadCheckError(
                href,
                f"asset is {got} bytes where its item says file:size {int(size)} "
                "(truncated or replaced)",
                item=item,
            )
    if mode == "checksum" and checksum is not None:
        name, want = _checksum_algorithm(str(checksum))
        digest = hashlib.new(name)
        if local:
            with open(local_path(href), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        else:
            import requests

            with requests.get(signed or href, stream=True, timeout=60) as response:
                response.raise_for_status()
                for block in response.iter_content(1 << 20):
                    digest.update(block)
        if digest.hexdigest() != want:
            raise DownloadCheckError(
                href,
                f"asset's {name} is {digest.hexdigest()} where its item says "
                f"file:checksum {checksum} (altered or corrupted)",
                item=item,
            )
