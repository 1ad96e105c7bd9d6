"""wheelhouse: build and cache wheels for Docker images."""

__version__ = "0.1.0"
