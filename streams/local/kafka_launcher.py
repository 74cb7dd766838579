"""The project's own Kafka: one KRaft broker (or a 3-broker cluster) on loopback, in the background.

Everything a local cluster owns lives under `<state_dir>/kafka/`: `cluster.json` (its id and
layout), and per node `node-<id>/` with `server.properties`, `broker.pid`, `broker.log` and `data/`.
Each node is a combined broker+controller; the controller quorum is the static voter set of all
nodes, so the storage is formatted once per node with one shared cluster id.

Connection security (`GDX_KAFKA_SECURITY`): `mtls`, the default — TLS on every listener (client,
inter-broker, controller) with client certificates from the project CA required, the principal
being the certificate's CN, the StandardAuthorizer denying whatever no ACL allows (only `broker` and
`gdx-operator` are superusers) — or `scram`, where clients log in with SCRAM-SHA-512 over TLS on
the client listener while brokers and controllers keep mTLS on their own, or `plaintext`, an
unauthenticated broker for comparisons (the security benchmark's baseline) and nothing else.
`server.properties` is written 0600 (it names the key material).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from foundation.errors import GdxError
from foundation.ports import port_in_use
from foundation.secret_files import write_private
from streams.kafka_probe import ClusterInfo, wait_for_cluster
from streams.local.kafka_jars import LOG4J_CONFIG, ensure_jars, java_binary, kafka_version
from streams.security import principals
from streams.security.pki import Pki
from streams.security.scram import ScramStore, storage_tool_argument
from streams.settings import Settings

STOP_GRACE_S = 30.0
EXIT_NOT_RUNNING = 3


@dataclass(frozen=True)
class Node:
    node_id: int
    root: Path

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"


@dataclass(frozen=True)
class NodeState:
    node: Node
    pid: int | None
    running: bool
    stale: bool


def cluster_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def nodes(settings: Settings, brokers: int) -> list[Node]:
    return [Node(n, cluster_dir(settings) / f"node-{n}") for n in range(1, brokers + 1)]


def new_cluster_id() -> str:
    """Kafka's own format: a random UUID in URL-safe base64 without padding.

    One id in 64 would start with '-', which the storage tool's argument parser reads as an
    option; Kafka's own generator avoids those too, so draw again.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def render_properties(settings: Settings, node: Node, brokers: int) -> str:
    voters = ",".join(f"{n}@127.0.0.1:{settings.controller_port(n)}" for n in range(1, brokers + 1))
    replication = min(3, brokers)
    min_isr = 2 if brokers >= 3 else 1
    lines: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        **_listener_lines(settings, node),
        "log.dirs": node.data_dir.resolve(),
        "num.partitions": 3,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": 6,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
        "log.segment.bytes": 64 * 1024 * 1024,
        "controlled.shutdown.enable": "true",
    }
    body = "\n".join(f"{k}={v}" for k, v in lines.items())
    return f"# written by `gdx kafka up` for node {node.node_id} of {brokers}; edits are overwritten\n{body}\n"


SSL_PRINCIPAL_RULES = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"
"""`User:<CN>`: a certificate's principal is its common name, the name the PKI issued it for."""
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def _listener_lines(settings: Settings, node: Node) -> dict[str, object]:
    client, controller = settings.client_port(node.node_id), settings.controller_port(node.node_id)
    if settings.kafka_security == "plaintext":
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{client}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    pki = Pki.of(settings.state_dir.resolve())
    broker = pki.paths(principals.BROKER)
    tls: dict[str, object] = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": broker.keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki.ca_cert,
        "ssl.client.auth": "required",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.principal.mapping.rules": SSL_PRINCIPAL_RULES,
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(f"User:{name}" for name in principals.SUPER_USERS),
    }
    if settings.kafka_security == "mtls":
        return {
            "listeners": f"CLIENT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{client}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": "CLIENT:SSL,CONTROLLER:SSL",
            **tls,
        }
    internal = settings.internal_port(node.node_id)
    return {
        "listeners": f"CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
        **tls,
        "listener.name.client.ssl.client.auth": "none",
        "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.client.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
    }


def _prepare_security(settings: Settings) -> None:
    """The broker's certificate and keystore (and the CA) before the first secured start."""
    if settings.kafka_security == "plaintext":
        return
    pki = Pki.of(settings.state_dir.resolve())
    issued = pki.ensure(principals.BROKER, server=True)
    if not issued.keystore.is_file():
        raise GdxError(
            f"{issued.keystore} is missing although {issued.cert} exists",
            f"reissue the broker's certificate with `gdx pki issue {principals.BROKER}`",
        )


def _pid_alive_as_broker(pid: int, node: Node) -> bool:
    """True only if `pid` is alive and is this node's broker (a recycled pid is not ours)."""
    for _ in range(5):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        if cmdline:
            return "kafka.Kafka" in cmdline and str(node.properties.resolve()) in cmdline
        time.sleep(0.05)  # empty while the process execs (or as a zombie, which stays empty)
    return False


def node_state(node: Node) -> NodeState:
    if not node.pid_file.is_file():
        return NodeState(node, None, running=False, stale=False)
    try:
        pid = int(node.pid_file.read_text().strip())
    except ValueError:
        return NodeState(node, None, running=False, stale=True)
    running = _pid_alive_as_broker(pid, node)
    return NodeState(node, pid, running=running, stale=not running)


def _check_ports(settings: Settings, to_start: list[Node]) -> None:
    for n in (node.node_id for node in to_start):
        ports = [settings.client_port(n), settings.controller_port(n)]
        if settings.kafka_security == "scram":
            ports.append(settings.internal_port(n))
        for port in ports:
            if port_in_use(port):
                raise GdxError(
                    f"port {port} on 127.0.0.1 is already in use by another process (needed by Kafka node {n})",
                    "stop that process, or choose other ports with GDX_KAFKA_PORT (e.g. GDX_KAFKA_PORT=19092)",
                )


def _read_layout(settings: Settings) -> dict[str, Any] | None:
    path = cluster_dir(settings) / "cluster.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _prepare_layout(settings: Settings, brokers: int) -> str:
    """The cluster id, creating the layout on first start and refusing a different one later."""
    layout = _read_layout(settings)
    if layout is not None:
        if layout["brokers"] != brokers or layout["kafka_port"] != settings.kafka_port:
            raise GdxError(
                f"{cluster_dir(settings)} holds a {layout['brokers']}-broker cluster on port {layout['kafka_port']}, "
                f"not the {brokers}-broker cluster on port {settings.kafka_port} asked for",
                "stop it and remove its data with `gdx kafka down --purge`, or use another GDX_STATE_DIR",
            )
        formatted = str(layout.get("security", "plaintext"))
        if settings.kafka_security == "scram" and formatted != "scram":
            raise GdxError(
                f"{cluster_dir(settings)} was formatted without SCRAM credentials ({formatted}); "
                "they are created when the storage is formatted",
                "remove its data with `gdx kafka down --purge` and start again with GDX_KAFKA_SECURITY=scram",
            )
        return str(layout["cluster_id"])
    cluster_id = new_cluster_id()
    cluster_dir(settings).mkdir(parents=True, exist_ok=True)
    layout = {
        "cluster_id": cluster_id,
        "brokers": brokers,
        "kafka_port": settings.kafka_port,
        "kafka_version": kafka_version(),
        "security": settings.kafka_security,
    }
    (cluster_dir(settings) / "cluster.json").write_text(json.dumps(layout, indent=2) + "\n")
    return cluster_id


def _java_options(settings: Settings, jars: Path) -> list[str]:
    return [
        f"-Xms{settings.kafka_heap}",
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{jars}/*",
    ]


def _java_command(java: str, settings: Settings, jars: Path, main: str, *args: str) -> list[str]:
    return [java, *_java_options(settings, jars), main, *args]


def storage_format_command(
    java: str, settings: Settings, jars: Path, node: Node, cluster_id: str
) -> tuple[list[str], str | None]:
    """The storage tool's command line, and the content of its argument file when it carries secrets.

    Under scram the `--add-scram` values hold passwords; the java launcher reads the main class and
    its arguments from an `@file` (mode 0600, removed after the format), so the passwords never
    appear in the process's command line (/proc/<pid>/cmdline is readable by every user), and
    `-XX:-UsePerfData` keeps the JVM from publishing its command in /tmp/hsperfdata_*.
    """
    arguments = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.properties.resolve())]
    if settings.kafka_security != "scram":
        return _java_command(java, settings, jars, *arguments), None
    store = ScramStore.of(settings.state_dir.resolve())
    for name in principals.known_principals(settings.consumers_file):
        arguments += ["--add-scram", storage_tool_argument(name, store.password(name))]
    argfile = node.root / "format.args"
    command = [java, *_java_options(settings, jars), "-XX:-UsePerfData", f"@{argfile.resolve()}"]
    return command, "\n".join(arguments) + "\n"


def _format_storage(java: str, settings: Settings, jars: Path, node: Node, cluster_id: str) -> None:
    if (node.data_dir / "meta.properties").is_file():
        return
    node.data_dir.mkdir(parents=True, exist_ok=True)
    command, argfile_text = storage_format_command(java, settings, jars, node, cluster_id)
    argfile = node.root / "format.args"
    if argfile_text is not None:
        write_private(argfile, argfile_text.encode())
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    finally:
        argfile.unlink(missing_ok=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise GdxError(
            f"formatting the storage of Kafka node {node.node_id} failed:\n{tail}",
            "remove the state with `gdx kafka down --purge` and try again",
        )


def _start_node(java: str, settings: Settings, jars: Path, node: Node) -> subprocess.Popen[bytes]:
    with node.log_file.open("ab") as log:
        process = subprocess.Popen(
            _java_command(java, settings, jars, "kafka.Kafka", str(node.properties.resolve())),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    node.pid_file.write_text(f"{process.pid}\n")
    return process


def _log_tail(node: Node, lines: int = 15) -> str:
    if not node.log_file.is_file():
        return "(no log)"
    return "\n".join(node.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class UpResult:
    info: ClusterInfo
    seconds: float
    started: tuple[int, ...]
    bootstrap_servers: str


def up(settings: Settings, brokers: int, report: bool = True) -> UpResult:
    """Start the missing nodes of the local cluster and wait until all answer a metadata request."""
    if settings.external_kafka:
        raise GdxError(
            f"KAFKA_BOOTSTRAP_SERVERS names an external cluster ({settings.kafka_bootstrap_servers}); "
            "nothing local is started",
            "use `gdx kafka status` to check it, or unset KAFKA_BOOTSTRAP_SERVERS to run the local broker",
        )
    settings = settings.model_copy(update={"kafka_brokers": brokers})
    java = java_binary()
    jars = ensure_jars(settings, quiet=not report)
    cluster_id = _prepare_layout(settings, brokers)
    states = [node_state(node) for node in nodes(settings, brokers)]
    for state in states:
        if state.stale:
            if report:
                print(
                    f"node {state.node.node_id}: removing stale pid file {state.node.pid_file} "
                    f"(pid {state.pid} is gone — the broker crashed or the machine restarted)",
                    flush=True,
                )
            state.node.pid_file.unlink()
    to_start = [s.node for s in states if not s.running]
    _check_ports(settings, to_start)
    began = time.monotonic()
    if to_start:
        _prepare_security(settings)
    processes: dict[Node, subprocess.Popen[bytes]] = {}
    for node in to_start:
        node.root.mkdir(parents=True, exist_ok=True)
        write_private(node.properties, render_properties(settings, node, brokers).encode())
        _format_storage(java, settings, jars, node, cluster_id)
        processes[node] = _start_node(java, settings, jars, node)
        if report:
            print(
                f"node {node.node_id}: started pid {processes[node].pid}, client port "
                f"{settings.client_port(node.node_id)}, log {node.log_file}",
                flush=True,
            )
    try:
        info = asyncio.run(_await_ready(settings, brokers, processes))
    except GdxError:
        for node in to_start:
            _stop_node(node_state(node))
        raise
    seconds = time.monotonic() - began
    if report:
        how = f"ready in {seconds:.1f} s" if to_start else "already running"
        print(
            f"Kafka {kafka_version()} {how}: {brokers} broker(s) at "
            f"{settings.bootstrap_servers} (cluster {info.cluster_id})",
            flush=True,
        )
    return UpResult(info, seconds, tuple(n.node_id for n in to_start), settings.bootstrap_servers)


async def _every_node_answers(settings: Settings, brokers: int) -> ClusterInfo:
    """Ready means each node answers on its own port and sees all brokers registered.

    A broker appears in the cluster metadata a moment before its client listener accepts
    connections, so asking any one node is not enough for a client that then talks to all.
    """
    end = time.monotonic() + settings.kafka_start_timeout_s
    info = await wait_for_cluster(settings.kafka, settings.kafka_start_timeout_s, brokers)
    for node_id in range(1, brokers + 1):
        node = replace(settings.kafka, bootstrap_servers=f"127.0.0.1:{settings.client_port(node_id)}")
        info = await wait_for_cluster(node, max(0.1, end - time.monotonic()), brokers)
    return info


async def _await_ready(settings: Settings, brokers: int, started: dict[Node, subprocess.Popen[bytes]]) -> ClusterInfo:
    """Wait for the metadata answer while watching that no started JVM has died."""
    waiter = asyncio.ensure_future(_every_node_answers(settings, brokers))
    try:
        while not waiter.done():
            for node, process in started.items():
                if process.poll() is not None:
                    raise GdxError(
                        f"Kafka node {node.node_id} exited (code {process.returncode}) during start-up; "
                        f"last log lines:\n{_log_tail(node)}",
                        f"read {node.log_file}; `gdx kafka down --purge` resets the local cluster",
                    )
            await asyncio.wait({waiter}, timeout=0.5)
        return waiter.result()
    except TimeoutError as exc:
        logs = "\n".join(f"node {n.node_id}: {n.log_file}" for n in started)
        raise GdxError(
            f"Kafka did not answer a metadata request within {settings.kafka_start_timeout_s:g} s ({exc}); "
            "the started brokers were stopped",
            f"read the logs ({logs}) or raise GDX_KAFKA_START_TIMEOUT_S on a slow machine",
        ) from None
    finally:
        waiter.cancel()


def _stop_node(state: NodeState, grace_s: float = STOP_GRACE_S) -> str:
    if state.stale:
        state.node.pid_file.unlink(missing_ok=True)
        return f"node {state.node.node_id}: not running (stale pid file removed)"
    if not state.running or state.pid is None:
        return f"node {state.node.node_id}: not running"
    os.kill(state.pid, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while time.monotonic() < end and _pid_alive_as_broker(state.pid, state.node):
        time.sleep(0.1)
    how = "stopped"
    if _pid_alive_as_broker(state.pid, state.node):
        os.kill(state.pid, signal.SIGKILL)
        how = f"killed after {grace_s:g} s without a clean shutdown"
    state.node.pid_file.unlink(missing_ok=True)
    return f"node {state.node.node_id}: {how} (pid {state.pid})"


def local_nodes(settings: Settings) -> list[Node]:
    """The nodes of the local cluster as laid out on disk (empty when none was ever started)."""
    layout = _read_layout(settings)
    return nodes(settings, int(layout["brokers"])) if layout else []


def down(settings: Settings, purge: bool = False) -> list[str]:
    """Stop every local node (in parallel, so the controller quorum outlives the brokers' shutdown)."""
    states = [node_state(node) for node in local_nodes(settings)]
    with ThreadPoolExecutor(max_workers=max(1, len(states))) as pool:
        lines = list(pool.map(_stop_node, states))
    if purge and cluster_dir(settings).exists():
        shutil.rmtree(cluster_dir(settings))
        lines.append(f"removed {cluster_dir(settings)}")
    return lines or ["no local Kafka cluster here"]
