#!/usr/bin/env bash
# Make sure the PostgreSQL and MariaDB servers the tests use are up on 127.0.0.1 (start them if not).
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() {  # port name: poll with a deadline, never a fixed sleep
  local deadline=$((SECONDS + 60))
  until up "$1"; do
    if (( SECONDS > deadline )); then echo "ensure-services: $2 did not come up on 127.0.0.1:$1" >&2; return 1; fi
    sleep 0.2
  done
}
status=0
if ! up 5432; then
  echo "ensure-services: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_up 5432 PostgreSQL || status=1
fi
if ! up 3306; then
  echo "ensure-services: starting MariaDB"
  if [ -x /usr/sbin/mariadbd ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  wait_up 3306 MariaDB || status=1
fi
exit $status
