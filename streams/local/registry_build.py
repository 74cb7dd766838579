"""The pinned schema registry: Apicurio Registry built from Maven Central by Maven, kept in the cache.

Apicurio publishes its application only as libraries, so deploy/registry/pom.xml assembles a
runnable Quarkus build from them (with the project's one addition, the filter that lets only named
principals write). The build goes into `<cache_dir>/apicurio-registry-<version>/` (a runner jar and
its `lib/`), outside git, built in a staging folder and marked complete with the digest of what it
was built from, so an interrupted or outdated build is redone instead of half-used.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from foundation.errors import GdxError
from streams.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "registry"
POM = DEPLOY_DIR / "pom.xml"
SOURCES = DEPLOY_DIR / "src"
RUNNER = "registry-runner.jar"
_MARKER = ".complete"


def registry_version() -> str:
    """The Apicurio Registry version pinned in the pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ElementTree.parse(POM).getroot().find("m:properties/m:apicurio.version", ns)
    version = (node.text or "").strip() if node is not None else ""
    if not version:
        raise GdxError(f"{POM} does not pin <apicurio.version>", "restore deploy/registry/pom.xml from git")
    return version


def build_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"apicurio-registry-{registry_version()}"


def runner_jar(settings: Settings) -> Path:
    return build_dir(settings) / RUNNER


def _digest() -> str:
    """Of everything the build is made from: the pom and the project's own Java sources."""
    digest = hashlib.sha256(POM.read_bytes())
    for source in sorted(SOURCES.rglob("*.java")):
        digest.update(source.relative_to(DEPLOY_DIR).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def build_ready(settings: Settings) -> bool:
    marker = build_dir(settings) / _MARKER
    return marker.is_file() and marker.read_text().strip() == _digest() and runner_jar(settings).is_file()


def ensure_build(settings: Settings, quiet: bool = False) -> Path:
    """The runner jar, built with Maven first when missing or made from another pom."""
    target = build_dir(settings)
    if build_ready(settings):
        return runner_jar(settings)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise GdxError(
            f"Maven not found: it is needed once to build the schema registry (Apicurio {registry_version()})",
            "install Maven and Java 17+ (apt-get install maven openjdk-17-jre-headless)",
        )
    if not quiet:
        print(
            f"building Apicurio Registry {registry_version()} from Maven Central into {target} "
            "(about 30 s and 210 MB the first time) …",
            flush=True,
        )
    began = time.monotonic()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    output = staging / "build"
    command = [mvn, "-q", "-B", "-f", str(POM), f"-Dgdx.build.dir={output}", "package"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    runners = sorted(output.glob("*-runner.jar"))
    if result.returncode != 0 or not runners:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        shutil.rmtree(staging, ignore_errors=True)
        raise GdxError(
            f"Maven could not build the schema registry (exit {result.returncode}):\n{tail}",
            "check that Maven Central is reachable, then run `gdx registry fetch` again",
        )
    runners[0].rename(staging / RUNNER)
    (output / "lib").rename(staging / "lib")
    shutil.rmtree(output)
    (staging / _MARKER).write_text(_digest())
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    if not quiet:
        print(f"schema registry built in {time.monotonic() - began:.0f} s", flush=True)
    return runner_jar(settings)
