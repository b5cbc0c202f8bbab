# The official ZooKeeper image, for machines that can reach Docker Hub:
#   ZOOKEEPER_DOCKERFILE=official.Dockerfile docker compose up --build
# It reads the same ZOO_* variables as docker/zookeeper/Dockerfile and allows
# `srvr` by default, which the compose healthcheck sends.
FROM zookeeper:3.8
