#!/usr/bin/env bash
# Installs the system tools the project runs on, from Debian's packages, when they are missing:
# Java 17+ and Maven (for the Kafka broker), Prometheus (its server and promtool, for monitoring and
# the rule tests) and its Alertmanager (delivers the alerts), PostgreSQL (the index's server database; the tests run their own instance),
# Chromium (the status-page test renders the page in it, headless).
# Needs root for apt-get; otherwise it says what to install.
set -euo pipefail

need=()
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ -n "$major" ] && [ "$major" -ge 17 ]
}
java_ok || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "gdx: missing system tools — install: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
  exit 1
fi

# Debian's prometheus packages would start their own services on :9090 and :9093. The project runs its own
# Prometheus process (`gdx prometheus up`), so package installs must not start services: a
# policy-rc.d answering 101 ("action forbidden") is the Debian way to say so.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "gdx: installing ${need[*]} from Debian packages …"
# apt's own chatter (debconf notes, progress) goes to a log shown only when the install fails.
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "gdx: installing ${need[*]} failed (apt-get's last lines above) — install them by hand, then run this again" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"

# Where systemd runs anyway (the policy is not consulted by every init), keep the packaged
# service stopped and disabled so it never holds the port.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for service in prometheus prometheus-alertmanager postgresql; do
    if [[ " ${need[*]} " == *" $service "* ]]; then
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
  done
fi
