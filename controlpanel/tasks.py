from celery import shared_task


@shared_task(name="controlpanel.heartbeat", acks_late=True)
def heartbeat() -> None:
    """Proves beat and a worker are alive: like every task, its runs are counted in the
    admin's job runs and /metrics (controlpanel.observability)."""
