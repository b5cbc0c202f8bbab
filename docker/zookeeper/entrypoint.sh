#!/bin/bash
# Start ZooKeeper in the foreground from the ZOO_* variables the official
# image reads (a subset: ZOO_MY_ID, ZOO_SERVERS, ZOO_TICK_TIME,
# ZOO_INIT_LIMIT, ZOO_SYNC_LIMIT, ZOO_MAX_SESSION_TIMEOUT,
# ZOO_4LW_COMMANDS_WHITELIST, JVMFLAGS), so one compose file serves both.
set -euo pipefail

conf=/conf/zoo.cfg
data=/data

if [ ! -f "$conf" ]; then
  {
    echo "dataDir=$data"
    echo "clientPort=2181"
    echo "tickTime=${ZOO_TICK_TIME:-2000}"
    echo "initLimit=${ZOO_INIT_LIMIT:-5}"
    echo "syncLimit=${ZOO_SYNC_LIMIT:-2}"
    echo "maxSessionTimeout=${ZOO_MAX_SESSION_TIMEOUT:-60000}"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr,ruok,mntr}"
    # A peer binds its quorum ports on every address: its own service name
    # resolves to the container's address only once Docker's DNS has it.
    echo "quorumListenOnAllIPs=true"
    for server in ${ZOO_SERVERS:-}; do echo "$server"; done
  } >"$conf"
fi
if [ -n "${ZOO_MY_ID:-}" ] && [ ! -f "$data/myid" ]; then
  echo "$ZOO_MY_ID" >"$data/myid"
fi

# zookeeper.jar's manifest names its dependencies; slf4j-simple sends the log
# to stderr, that is to `docker logs`. The healthcheck's `srvr` every second
# would log two INFO lines each: those two loggers say only warnings.
exec java ${JVMFLAGS:--Xmx256m -XX:+UseSerialGC} \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${ZOO_LOG_LEVEL:-info}" \
  -Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.NIOServerCnxn=warn \
  -Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.command.FourLetterCommands=warn \
  -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$conf"
