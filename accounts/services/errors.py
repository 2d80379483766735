"""The error every accounts write raises for a request the caller can fix."""


class ServiceError(Exception):
    """A request the caller can fix; the message says how."""
