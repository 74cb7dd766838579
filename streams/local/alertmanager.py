"""The project's own Alertmanager: Prometheus's alerts grouped, timed and delivered to the receiver.

Debian's `prometheus-alertmanager` provides the binary; its service is never used. It runs on
loopback with clustering off (a single local instance gossips with nobody), its state under
`<state_dir>/alertmanager/`. Every alert goes to one webhook, the project's receiver
(`monitoring.alert_receiver`), which authenticates it by a bearer token read from a 0600 file.

Timing, as an operator sets it: a new group waits `group_wait` for its siblings, a changed group
is re-sent after `group_interval`, an unchanged firing group is repeated every `repeat_interval`
(pages every `page_repeat_interval`, sooner); resolutions are sent too.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GdxError
from streams.local import local_server
from streams.local.local_server import Listener, ProcessState, ServerFiles

BINARY = "prometheus-alertmanager"
INSTALL_HINT = "install it with `apt-get install prometheus-alertmanager`"
RECEIVER = "gdx-receiver"
GROUP_BY = ("alertname", "agency", "dataset")
"""One notification per alert and source: a DLT outage and a DOPA outage are two things to fix."""


class AlertmanagerNotInstalled(GdxError):
    def __init__(self) -> None:
        super().__init__(f"Alertmanager is not installed (no `{BINARY}` on PATH)", INSTALL_HINT, exit_code=4)


@dataclass(frozen=True)
class Timing:
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    page_repeat_interval_s: float = 3600.0


@dataclass(frozen=True)
class AlertmanagerSetup:
    root: Path
    port: int
    receiver_url: str
    token_file: Path
    start_timeout_s: float
    timing: Timing = Timing()
    host: str = "127.0.0.1"
    port_setting: str = "GDX_ALERTMANAGER_PORT"

    @property
    def files(self) -> ServerFiles:
        return ServerFiles("alertmanager", self.root)

    @property
    def listener(self) -> Listener:
        return Listener(self.host, self.port, self.port_setting, "GDX_PROMETHEUS_START_TIMEOUT_S")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.listener.url


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_config(setup: AlertmanagerSetup) -> str:
    """The route and its one receiver, as JSON (which is YAML too)."""
    timing = setup.timing
    config = {
        "route": {
            "receiver": RECEIVER,
            "group_by": list(GROUP_BY),
            "group_wait": _duration(timing.group_wait_s),
            "group_interval": _duration(timing.group_interval_s),
            "repeat_interval": _duration(timing.repeat_interval_s),
            "routes": [
                {
                    "receiver": RECEIVER,
                    "matchers": ['severity="page"'],
                    "repeat_interval": _duration(timing.page_repeat_interval_s),
                }
            ],
        },
        "receivers": [
            {
                "name": RECEIVER,
                "webhook_configs": [
                    {
                        "url": setup.receiver_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(setup.token_file.resolve())}
                        },
                    }
                ],
            }
        ],
    }
    header = "# written by `gdx prometheus up`; edits are overwritten — change the settings instead\n"
    return header + json.dumps(config, indent=2) + "\n"


def binary() -> str:
    found = shutil.which(BINARY)
    if found is None:
        raise AlertmanagerNotInstalled()
    return found


def state(setup: AlertmanagerSetup) -> ProcessState:
    return local_server.state(setup.files)


def up(setup: AlertmanagerSetup) -> float:
    """Start Alertmanager (or reload the running one) and wait until it is ready; the seconds taken."""
    executable = binary()
    files = setup.files
    files.root.mkdir(parents=True, exist_ok=True)
    files.config_file.write_text(render_config(setup))
    command = [
        executable,
        f"--config.file={files.config_file.resolve()}",
        f"--storage.path={files.data_dir.resolve()}",
        f"--web.listen-address={setup.address}",
        "--cluster.listen-address=",
    ]
    return local_server.up(files, setup.listener, command, setup.start_timeout_s)[1]


def down(setup: AlertmanagerSetup, purge: bool = False) -> list[str]:
    return local_server.down(setup.files, purge)
