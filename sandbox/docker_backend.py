"""Docker, the default backend: the engine from DOCKER_HOST or the local socket."""

from sandbox import backends
from sandbox.docker_sandbox import docker_client
from sandbox.engine import EngineBackend

backends.register("docker", lambda: EngineBackend("docker", docker_client, "docker"))
