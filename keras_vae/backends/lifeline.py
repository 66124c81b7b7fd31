"""A lifeline between the processes of one cluster, so that none waits on a collective for a process that has
gone: rank 0 listens, every other rank holds a TCP connection to it. A process that leaves says how ("ok"
when its part is done, "error" when it stops on an error); one that goes without a word (killed, crashed,
its host lost) closes its end by the kernel's hand, or stops answering keep-alives. Each process watches
its connections on threads of its own and, when a peer has gone, says so in one line and exits: at once for
a process that went silently, after a grace period for one that stopped on an error (the same error ends
this process first, with its own line, when rank 0 decided it for all). A block that fails (a collective
with a killed process fails too) first waits a moment to learn whether a lost peer is why, so that the one
line, not JAX's shutdown of a broken cluster, ends it. Rank 0 learns of every loss: it tells the other
ranks which process went, waits for them to go, and goes last, for JAX's coordination service lives in it.

JAX's own coordination service finds a lost process only by its missing heartbeats (100 s), and then ends the
others with a native stack trace."""

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

GRACE_SECONDS = 10.0
"""How long a process waits for its own error after a peer stopped on one."""
CAUSE_SECONDS = 2.0
"""How long a process whose block failed waits to learn whether a lost peer is why: a collective with a killed
process fails at about the moment the kernel closes the killed process's connections."""
FAREWELL_SECONDS = 10.0
"""How long rank 0 waits for the others to go before it goes (with it goes JAX's coordination service, whose
loss the others would otherwise report in a native stack trace of their own)."""
EXIT_CODE = 3
KEEPALIVE = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
"""A silent peer (its host lost) is given up after 5 + 3 * 5 s without an answer."""


def leave(peer: int, how: str) -> None:
    """Say in one line why this process stops, and stop it, whatever its other threads are doing."""
    sys.stdout.flush()
    print(
        f"keras-vae: error: process {peer} of the cluster {how} before the run finished, so this process "
        "stops too; start every process again with --resume to go on from the last epoch saved",
        file=sys.stderr,
        flush=True,
    )
    os._exit(EXIT_CODE)


def say(connection: socket.socket, *words: object) -> None:
    with contextlib.suppress(OSError):
        connection.sendall((" ".join(map(str, words)) + "\n").encode())


class Watch:
    """The watching side of one process's connections: one thread a peer, each waiting for the one line its
    peer sends ("ok", "error", or from rank 0, "lost RANK HOW"), or for its end without one."""

    def __init__(self, rank: int, connections: dict[int, socket.socket]):
        self.rank = rank
        self.connections = connections
        self.leaving = threading.Event()
        """This process has left its block, either way; finished: without an error."""
        self.finished = threading.Event()
        self.lost = threading.Event()
        """A peer has gone before the run finished: this process is ending for it."""
        self.gone = {peer: threading.Event() for peer in connections}
        self.ending = threading.Lock()

    def start(self) -> None:
        for peer in self.connections:
            threading.Thread(target=self.watch, args=(peer,), daemon=True).start()

    def watch(self, peer: int) -> None:
        try:
            words = self.connections[peer].makefile("rb").readline().decode().split()
        except OSError:
            words = []
        self.gone[peer].set()
        if self.finished.is_set() or words == ["ok"]:
            return
        if words == ["error"] and self.leaving.wait(GRACE_SECONDS):
            return
        self.lost.set()
        if words[:1] == ["lost"]:
            self.end(int(words[1]), " ".join(words[2:]))
        else:
            self.end(peer, "stopped on an error" if words == ["error"] else "ended")

    def end(self, peer: int, how: str) -> None:
        """Leave for peer's sake; rank 0 first tells the others and waits for them to go."""
        if not self.ending.acquire(blocking=False):
            return
        others = [other for other in self.connections if other != peer] if self.rank == 0 else []
        for other in others:
            say(self.connections[other], "lost", peer, how)
        deadline = time.monotonic() + FAREWELL_SECONDS
        for other in others:
            self.gone[other].wait(max(0.0, deadline - time.monotonic()))
        leave(peer, how)


def keep_alive(connection: socket.socket) -> socket.socket:
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in KEEPALIVE.items():
        if hasattr(socket, option):
            connection.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return connection


def connect(
    rank: int, count: int, host: str, share: Callable[[int], int], timeout: float
) -> dict[int, socket.socket]:
    """The connections of this rank: to every other rank on rank 0, to rank 0 elsewhere. share(value) hands
    rank 0's value to every rank (the port it listens on)."""
    if rank != 0:
        port = share(0)
        connection = socket.create_connection((host, port), timeout=timeout)
        connection.sendall(rank.to_bytes(4, "big"))
        connection.settimeout(None)
        return {0: keep_alive(connection)}
    family = socket.getaddrinfo(host, None)[0][0]
    with socket.create_server(("", 0), family=family) as server:
        share(server.getsockname()[1])
        server.settimeout(timeout)
        connections = {}
        while len(connections) < count - 1:
            connection, _ = server.accept()
            connection.settimeout(timeout)
            peer = int.from_bytes(connection.recv(4), "big")
            if not 0 < peer < count or peer in connections:  # a stray connection, not of this cluster
                connection.close()
                continue
            connection.settimeout(None)
            connections[peer] = keep_alive(connection)
    return connections


@contextlib.contextmanager
def lifeline(
    rank: int, count: int, host: str, share: Callable[[int], int], timeout: float = 300
) -> Iterator[None]:
    """Watch the other processes of the cluster while the block runs (see the module's docstring); on leaving
    it, tell them how."""
    watch = Watch(rank, connect(rank, count, host, share, timeout) if count > 1 else {})
    watch.start()
    word = "error"
    try:
        yield
        word = "ok"
        watch.finished.set()
    except BaseException:
        if watch.lost.wait(CAUSE_SECONDS):  # a lost peer failed the block: the watch ends this process
            time.sleep(FAREWELL_SECONDS + CAUSE_SECONDS)
        raise
    finally:
        watch.leaving.set()
        for connection in watch.connections.values():
            say(connection, word)
            connection.close()
