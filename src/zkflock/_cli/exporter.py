"""``zkflock exporter``: the cluster's locks on ``/metrics`` for Prometheus."""

from __future__ import annotations

import signal
import threading

import click


def register(group: click.Group) -> None:
    group.add_command(exporter)


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), required=True,
              help="Port to serve /metrics on (0: any free port, printed at start).")
@click.option("--addr", default="0.0.0.0", show_default=True,
              help="Address to listen on (127.0.0.1: this host only).")
@click.option("--interval", type=click.FloatRange(min=0), default=5.0, show_default=True,
              metavar="SECONDS", help="Read ZooKeeper at most once per SECONDS; scrapes "
              "in between are served the last read.")
@click.pass_context
def exporter(ctx: click.Context, port: int, addr: str, interval: float) -> None:
    """Serve every lock's holders, waiters and ages on /metrics until stopped.

    \b
    Per lock: zkflock_lock_holders and zkflock_lock_waiters (by kind),
    zkflock_lock_holder_age_seconds, zkflock_lock_oldest_waiter_age_seconds;
    and zkflock_exporter_up, zkflock_exporter_read_seconds / _requests.
    SIGTERM or Ctrl-C stops it (exit 0).
    """
    from zkflock._observe.exporter import cluster_registry
    from zkflock._session import connect
    from zkflock.metrics import serve

    obj = ctx.obj
    stop = threading.Event()
    with connect(getattr(obj, "hosts", None), root=getattr(obj, "root", None)) as session:
        registry, _collector = cluster_registry(session, interval)
        server, thread = serve(port, addr=addr, registry=registry)
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            click.echo(f"zkflock exporter: serving http://{addr}:{server.server_port}/metrics "
                       f"(locks under {session.settings.namespace} on {session.hosts})",
                       err=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.shutdown()
            server.server_close()
            thread.join(10)
