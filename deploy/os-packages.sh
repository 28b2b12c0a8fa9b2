#!/usr/bin/env bash
# Installs the servers parkflow's tests (and a single-machine deployment) need, from the OS
# packages: Mosquitto (MQTT broker, with mosquitto_passwd), InfluxDB 1.x, PostgreSQL (the
# operational database's second backend: the tests start their own server from its binaries)
# and Chromium (the pages' browser tests drive it headless, no browser is downloaded;
# `parkflow report` prints its PDF through it).
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing OS packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing: ${need[*]}" >&2
  echo "install them first, e.g. on Debian/Ubuntu: sudo apt-get install ${need[*]}" >&2
  echo "(Debian's 'influxdb' package is InfluxDB 1.6; any InfluxDB 1.x influxd works)" >&2
  exit 1
fi
