"""Ways to start an engine other than a local process: Docker containers (through testcontainers).

``images`` builds a local image from the engine store, ``docker`` starts and identifies a container,
``ownership`` labels containers with their owning process and removes them on every exit path,
``topology`` wires several containers together (a primary and its replica).
"""
