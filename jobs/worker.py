"""Worker process wiring: start the supervisor when a worker is ready, stop it on shutdown."""

from celery.signals import worker_ready, worker_shutdown

_supervisor = None


@worker_ready.connect
def start_supervisor(sender, **kwargs) -> None:
    global _supervisor
    from jobs.services.supervisor import Supervisor

    _supervisor = Supervisor(hostname=sender.hostname)
    _supervisor.start()


@worker_shutdown.connect
def stop_supervisor(sender, **kwargs) -> None:
    if _supervisor is not None:
        _supervisor.stop()
