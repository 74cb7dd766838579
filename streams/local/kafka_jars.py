"""The pinned Kafka build: where its jars come from (Maven Central, through Maven) and where they live.

The version is pinned once, in deploy/kafka/pom.xml. Jars are copied into a cache outside git,
one folder per version, marked complete only after Maven finished, so an interrupted fetch is
redone instead of leaving a broken classpath.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from foundation.errors import GdxError
from streams.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG = DEPLOY_DIR / "log4j2.properties"
MIN_JAVA = 17
_MARKER = ".complete"


def kafka_version() -> str:
    """The Kafka version pinned in the pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ElementTree.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    version = (node.text or "").strip() if node is not None else ""
    if not version:
        raise GdxError(f"{POM} does not pin <kafka.version>", "restore deploy/kafka/pom.xml from git")
    return version


def jar_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{kafka_version()}" / "libs"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def jars_ready(settings: Settings) -> bool:
    marker = jar_dir(settings) / _MARKER
    return marker.is_file() and marker.read_text().strip() == _pom_digest()


def ensure_jars(settings: Settings, quiet: bool = False) -> Path:
    """Return the jar folder, fetching it with Maven first if it is missing or stale."""
    target = jar_dir(settings)
    if jars_ready(settings):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise GdxError(
            f"Maven not found: it is needed once to fetch the Kafka {kafka_version()} jars",
            "install Maven (apt-get install maven) and Java 17+",
        )
    if not quiet:
        print(f"fetching Apache Kafka {kafka_version()} jars from Maven Central into {target} …", flush=True)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise GdxError(
            f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n{tail}",
            "check that Maven Central is reachable, then run `gdx kafka fetch` again",
        )
    (staging / _MARKER).write_text(_pom_digest())
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    if not quiet:
        print(f"Kafka jars ready: {sum(1 for _ in target.glob('*.jar'))} jars", flush=True)
    return target


def java_binary(needed_by: str | None = None) -> str:
    """The java launcher to use (JAVA_HOME first, then PATH), checked to be Java 17 or newer;
    `needed_by` names what runs on it in the error (Kafka unless said)."""
    needed_by = needed_by or f"Kafka {kafka_version()}"
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not Path(candidate).is_file():
        raise GdxError(
            f"Java not found (no JAVA_HOME and no `java` on PATH): {needed_by} needs Java {MIN_JAVA} or newer",
            "install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        )
    result = subprocess.run([candidate, "-version"], capture_output=True, text=True, check=False, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise GdxError(f"could not read the Java version from {candidate}", "install Java 17 or newer")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise GdxError(
            f"Java {major} found at {candidate}, but {needed_by} needs Java {MIN_JAVA}+",
            "install a newer JDK (apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one",
        )
    return candidate
