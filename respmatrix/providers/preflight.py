"""Before a docker run: a daemon, an image per engine, and one trial start each.

The CLI calls this before pytest starts, so a missing daemon, an image that is nowhere, a
container that exits at start or a server that is not the engine named is one error line, not
an error per case.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.providers import images
from respmatrix.providers.docker import (
    DockerEngine,
    ImageUnavailableError,
    docker_client,
    resolve_image,
)


def ensure_images(
    specs: Sequence[EngineSpec],
    overrides: dict[str, str],
    store: Any,
    install: Callable[[Sequence[EngineSpec]], None] | None,
) -> None:
    """Make sure every engine has an image to run.

    An ``--engine-image`` must exist or be pullable. Otherwise the locally built image, the
    catalog's (pulled if missing), or, when neither can be had (an offline machine), an image
    built now from the engine store; ``install`` (None: do not install) fetches a missing engine.
    """
    client = docker_client()
    try:
        built: set[str] = set()
        for spec in specs:
            override = overrides.get(spec.id)
            try:
                resolve_image(spec, client, override)
                continue
            except ImageUnavailableError:
                if override or (install is None and not store.is_installed(spec)):
                    raise
            if spec.install_id in built:
                continue
            if install is not None:
                install([spec])
            print(
                f"respmatrix: {spec.image} cannot be pulled; building {images.image_tag(spec)} "
                "from the engine store",
                file=sys.stderr,
                flush=True,
            )
            images.build_image(spec, store, client)
            built.add(spec.install_id)
    finally:
        client.close()


def trial_start(specs: Sequence[EngineSpec], overrides: dict[str, str]) -> dict[str, float]:
    """Start and identify each engine's container once, then remove it; seconds per engine."""
    seconds = {}
    for spec in specs:
        with DockerEngine(spec, overrides.get(spec.id)) as engine:
            seconds[spec.id] = engine.started_in
    return seconds
