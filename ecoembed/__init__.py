"""ecoembed: context-aware multimodal (Sentinel-1 + Sentinel-2) embeddings as a workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecoembed")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
