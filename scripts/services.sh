#!/usr/bin/env bash
# Check that the servers the tests talk to answer; with --start, start those that do not,
# using this machine's own commands (Debian packages, run as root). Exit 1 if any stays down.
set -u
start=0
[ "${1:-}" = "--start" ] && start=1

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

launch() {
  case "$1" in
    postgresql) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start ;;
    mosquitto)  mosquitto -d -c /etc/mosquitto/mosquitto.conf ;;
    nats)       start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
                  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ;;
  esac
}

failed=0
for entry in "postgresql 5432" "mosquitto 1883" "nats 4222"; do
  set -- $entry
  name=$1 port=$2
  if up "$port"; then
    echo "ok: $name on 127.0.0.1:$port"
    continue
  fi
  if [ $start -eq 1 ]; then
    echo "starting $name ..."
    launch "$name" >/dev/null 2>&1
    for _ in $(seq 1 60); do up "$port" && break; sleep 0.5; done
  fi
  if up "$port"; then
    echo "ok: $name on 127.0.0.1:$port (started)"
  else
    echo "DOWN: $name on 127.0.0.1:$port"
    failed=1
  fi
done
exit $failed
