"""Model servers as Ray actors, one per replica, placed on nodes with the GPUs they ask for;
the driver balances requests across their URLs. The actor owns its server process and stops
it with itself."""

from __future__ import annotations

from collections.abc import Callable

from agents.servers import ManagedServer, VllmOptions, free_port, vllm_command


def vllm_command_for(options: VllmOptions) -> Callable[[int, str], list[str]]:
    return lambda port, host: vllm_command(options, port, host=host)


def start_server_actors(
    command: Callable[[int, str], list[str]],
    model_name: str,
    replicas: int,
    num_gpus: float,
    ready_path: str = "/health",
):
    """Start `replicas` actors, each running `command(port, host)`; returns (urls, actors).
    The server binds the node's address so that the driver, elsewhere, can reach it."""
    import ray

    @ray.remote(num_cpus=0)
    class ServerActor:
        def __init__(self) -> None:
            node = ray.get_runtime_context().get_node_id()
            # the address the node was started with (--node-ip-address), not a guess
            host = next(n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node)
            port = free_port()
            self.url = f"http://{host}:{port}/v1"
            self.server = ManagedServer(
                command(port, host), port, model_name, ready_path=ready_path
            ).start()

        def base_url(self) -> str:
            return self.url

        def stop(self) -> None:
            self.server.stop()

    actors = [ServerActor.options(num_gpus=num_gpus).remote() for _ in range(replicas)]
    urls = ray.get([a.base_url.remote() for a in actors])
    return urls, actors


def stop_server_actors(actors) -> None:
    import ray

    ray.get([a.stop.remote() for a in actors])
    for actor in actors:
        ray.kill(actor)
