"""Which STAC sources need an account, and whether this process holds the key for it.

Checked when the workflow is built (rules/common.smk), by ``ecoembed validate-config`` and
again when an acquisition job starts (a cluster node may not share the login shell's
environment), so a missing key is one error naming the variable, before any download.

Pure Python on purpose: the Snakefile imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ecoembed.io.sensors import SENSOR_NAMES, SENSORS

# The environment variable each signing reads its key from.
SIGNER_KEY_ENV = {"planetary-computer": "PC_SDK_SUBSCRIPTION_KEY"}
SIGNER_NAMES = {"planetary-computer": "Microsoft Planetary Computer"}
SIGNUP = {
    "planetary-computer": "request an account at https://planetarycomputer.microsoft.com/account"
    "/request, then copy the primary key of https://planetarycomputer.developer.azure-api.net"
    "/profile"
}
# Collections a signing serves only to account holders, as the provider marks them
# (Planetary Computer's collection field msft:requires_account: true; anonymous SAS tokens
# are refused for them, microsoft/PlanetaryComputer issue 230).
ACCOUNT_COLLECTIONS = {"planetary-computer": frozenset({SENSORS["s1"].collection})}


class MissingCredentialsError(RuntimeError):
    """A source needs an account key that is not in the environment."""


def key_env_of(source: Mapping[str, Any]) -> str | None:
    """The environment variable that must hold the source's key, or None if it needs none.

    ``key_env`` set in the config says so explicitly; otherwise a collection its signing
    serves only to account holders needs that signing's variable.
    """
    if source.get("key_env"):
        return str(source["key_env"])
    sign = str(source.get("sign", "none"))
    if str(source.get("collection")) in ACCOUNT_COLLECTIONS.get(sign, ()):
        return SIGNER_KEY_ENV[sign]
    return None


def credential_hint(source: Mapping[str, Any]) -> str:
    """One sentence for a user whose request was refused: which key, where to get it."""
    env = key_env_of(source) or SIGNER_KEY_ENV.get(str(source.get("sign", "none")))
    if env is None:
        return ""
    sign = str(source.get("sign", "none"))
    who = SIGNER_NAMES.get(sign, str(source.get("api")))
    signup = f" ({SIGNUP[sign]})" if sign in SIGNUP else ""
    return (
        f"collection {source.get('collection')!r} at {who} needs an account: export "
        f"{env}=<your key>{signup}; see the docs, 'Run on real data' (docs/howto/real-data.md)"
    )


def check_credentials(
    stac_cfg: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`MissingCredentialsError` naming the variable if a source's key is unset."""
    env = os.environ if environ is None else environ
    for kind in SENSOR_NAMES:
        source = stac_cfg.get(kind) or {}
        var = key_env_of(source)
        if var is not None and not env.get(var, "").strip():
            raise MissingCredentialsError(
                f"stac.{kind}: {var} is not set; {credential_hint(source)}"
            )
