"""A hung API server is an error within the client's timeout, not a hung operator."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from rightsizer.adapters.kubernetes import ClusterError, KubernetesCluster


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_silent_api_server_fails_the_call_within_the_timeout(silent_server: str) -> None:
    configuration = client.Configuration(host=silent_server)
    cluster = KubernetesCluster(api=client.ApiClient(configuration), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ClusterError, match="unreachable"):
        cluster.namespace_labels()
    assert time.monotonic() - started < 10
