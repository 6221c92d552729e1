# shellcheck shell=bash
# Process and port helpers shared by hack/local-cluster.sh and hack/gitea.sh (sourced, not run).
# They expect DIR (the state directory, absolute) and LOG_NAME (the script's name, for messages);
# DIR/run/<component>.pid holds the PID of each process a script started.

log() { echo "$LOG_NAME: $*" >&2; }

# ours PID: the process is alive and was started for this DIR (guards against reused PIDs).
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$DIR/"; }

# alive PID: the process exists and has not exited (a zombie of this shell has).
alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null || true; }

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: N distinct free loopback ports, below Linux's ephemeral range so that outgoing
# connections do not take them. Another process may still take one before it is bound: the
# scripts start again with other ports when a log says "address already in use".
free_ports() {
  local ports=() p
  while [ ${#ports[@]} -lt "$1" ]; do
    p=$((20000 + RANDOM % 12000))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    port_free "$p" && ports+=("$p")
  done
  echo "${ports[@]}"
}

# start COMPONENT COMMAND...: runs COMMAND in the background, logging to DIR/logs/COMPONENT.log;
# DIR/run/COMPONENT.cmd keeps the command (NUL-separated) for a restart.
start() {
  local name=$1; shift
  "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/run/$name.pid"
  printf '%s\0' "$@" >"$DIR/run/$name.cmd"
}

# restart_component COMPONENT: stops COMPONENT and starts it again with the command it was
# started with; its previous log is kept as DIR/logs/COMPONENT.log.1.
restart_component() {
  local name=$1 args=()
  [ -f "$DIR/run/$name.cmd" ] || { log "$name was not started in $DIR"; exit 1; }
  mapfile -d '' args <"$DIR/run/$name.cmd"
  stop "$name"
  mv -f "$DIR/logs/$name.log" "$DIR/logs/$name.log.1" 2>/dev/null || true
  start "$name" "${args[@]}"
}

# stop COMPONENT...: sends TERM to each process of DIR/run/COMPONENT.pid that is still ours, then
# KILL to what is left after 10s.
stop() {
  local name pid pids=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$DIR/run/$name.pid"
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  done
}

# fail COMPONENT MESSAGE...: prints COMPONENT's log tail, stops everything with `SCRIPT down` and
# exits 1; when a port was taken since free_ports chose it, it runs `SCRIPT up DIR` again instead
# (twice at most). SCRIPT is $SELF.
fail() {
  local name=$1; shift
  log "$name: $*"
  if [ -f "$DIR/logs/$name.log" ]; then
    log "last lines of $DIR/logs/$name.log:"
    tail -n 30 "$DIR/logs/$name.log" >&2
  fi
  down
  if grep -qs "address already in use" "$DIR/logs/$name.log" && [ "${KUDOD_UP_ATTEMPT:-1}" -lt 3 ]; then
    log "a port was taken meanwhile: starting again with other ports"
    KUDOD_UP_ATTEMPT=$((${KUDOD_UP_ATTEMPT:-1} + 1)) exec "$SELF" up "$DIR"
  fi
  exit 1
}

# await COMPONENT SECONDS COMMAND...: polls COMMAND until it succeeds; fails with COMPONENT's
# log if COMPONENT exits or SECONDS pass.
await() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ours "$(pid_of "$name")" || fail "$name" "exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name" "not ready after ${secs}s: $*"
    sleep 0.1
  done
}

# healthy URL [CURL ARGS...]: the endpoint answers 200 with the body "ok".
healthy() { local url=$1; shift; [ "$(curl -sf --max-time 2 "$@" "$url")" = ok ]; }
