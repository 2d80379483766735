from celery import shared_task

from controlpanel.models import job_run_record


@shared_task(name="controlpanel.heartbeat", acks_late=True)
def heartbeat() -> None:
    """Proves beat and a worker are alive (visible in the admin's job runs)."""
    job_run_record(name="heartbeat")
