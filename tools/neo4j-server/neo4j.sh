#!/usr/bin/env bash
# Start or stop the local Neo4j 5 used by the tests and benchmarks (see README.md beside this file).
#   neo4j.sh up STATE_DIR     build with Maven if needed, start two servers (the served one and the
#                             standby a rebuild loads) on free loopback ports with a random password,
#                             wait until Bolt answers; writes STATE_DIR/env (NEO4J_URI,
#                             NEO4J_STANDBY_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_IMPORT_DIR: the inboxes
#                             through which full builds import offline) for `set -a; . STATE_DIR/env`
#   neo4j.sh down STATE_DIR   stop it cleanly (SIGTERM, then SIGKILL after 60 s)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"; state="${2:-}"
[ -n "$cmd" ] && [ -n "$state" ] || { echo "usage: $0 up|down STATE_DIR" >&2; exit 2; }
mkdir -p "$state"; state="$(cd "$state" && pwd)"

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "neo4j: '$1' is not installed; the Neo4j tests need it (Debian: apt-get install $2)" >&2; exit 1; }
}

running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

case "$cmd" in
up)
  if running && [ -f "$state/data/READY" ]; then echo "neo4j already running ($(cat "$state/data/READY"))"; exit 0; fi
  need java openjdk-17-jre-headless
  need mvn maven
  if [ ! -f "$here/target/classes/campuskg/Neo4jServer.class" ] || [ ! -d "$here/target/lib" ] \
     || [ "$here/pom.xml" -nt "$here/target/classes/campuskg/Neo4jServer.class" ] \
     || [ "$here/src/main/java/campuskg/Neo4jServer.java" -nt "$here/target/classes/campuskg/Neo4jServer.class" ]; then
    echo "neo4j: building the server with Maven (first time: downloads Neo4j 5.26 from Maven Central)"
    (cd "$here" && mvn -q -B -Dstyle.color=never package -DskipTests)
  fi
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  port="$(free_port)"; standby="$(free_port)"
  while [ "$standby" = "$port" ]; do standby="$(free_port)"; done
  password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
  rm -rf "$state/data"; mkdir -p "$state/data"
  umask 077
  printf 'NEO4J_URI=bolt://127.0.0.1:%s\nNEO4J_STANDBY_URI=bolt://127.0.0.1:%s\nNEO4J_USER=neo4j\nNEO4J_PASSWORD=%s\nNEO4J_IMPORT_DIR=%s\n' \
    "$port" "$standby" "$password" "$state/data/imports" > "$state/env"
  NEO4J_PASSWORD="$password" nohup java -Xms256m -Xmx"${NEO4J_HEAP:-1g}" -XX:+UseG1GC \
    -cp "$here/target/classes:$here/target/lib/*" campuskg.Neo4jServer "$state/data" "$port" "$standby" \
    > "$state/neo4j.log" 2>&1 &
  echo $! > "$state/pid"
  for _ in $(seq 1 180); do
    [ -f "$state/data/READY" ] && { echo "neo4j ready on bolt://127.0.0.1:$port and :$standby (log: $state/neo4j.log)"; exit 0; }
    running || { echo "neo4j: the server exited while starting; its log:" >&2; tail -40 "$state/neo4j.log" >&2; exit 1; }
    sleep 1
  done
  echo "neo4j: Bolt did not answer within 180 s; its log:" >&2; tail -40 "$state/neo4j.log" >&2
  kill "$(cat "$state/pid")" 2>/dev/null || true
  exit 1
  ;;
down)
  if running; then
    pid="$(cat "$state/pid")"; kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "neo4j stopped"
  fi
  rm -f "$state/pid"
  ;;
*) echo "usage: $0 up|down STATE_DIR" >&2; exit 2 ;;
esac
