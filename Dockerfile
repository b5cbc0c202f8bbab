# zkflock: the library and the `zkflock` command, run as the user `zkflock`.
#   docker build --network host -t zkflock .
# Dependencies come from PyPI, or, when docker/wheels/ holds wheels (made on
# the host by docker/make-wheelhouse), from there with no index at all: for
# builds whose network cannot verify PyPI's certificate (README, "Containers").

# One apt run for both stages (the package lists are the slow download).
FROM debian:bookworm-slim AS python
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

FROM python AS build
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# With wheels in docker/wheels/, pip (and the build of zkflock itself) uses
# them and no index: a pip.conf in the venv says so while it is being built.
COPY docker/wheels/ /wheels/
RUN python3 -m venv /opt/zkflock \
 && if ls /wheels/*.whl >/dev/null 2>&1; then \
      printf '[global]\nno-index = true\nfind-links = /wheels\n' >/opt/zkflock/pip.conf; \
    fi
COPY pyproject.toml /src/
COPY src/ /src/src/
RUN /opt/zkflock/bin/pip install -q /src \
 && rm -f /opt/zkflock/pip.conf \
 && /opt/zkflock/bin/zkflock --version

FROM python
COPY --from=build /opt/zkflock /opt/zkflock
# /data is where the scenario mounts its shared volume: a new named volume
# takes this directory's owner, so the unprivileged user can write to it.
RUN useradd --create-home --user-group --shell /bin/bash zkflock \
 && mkdir /data && chown zkflock:zkflock /data
ENV PATH=/opt/zkflock/bin:$PATH \
    ZKFLOCK_ROOT=/data
USER zkflock
WORKDIR /data
CMD ["zkflock", "--help"]
