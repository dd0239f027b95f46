"""What the domain asks of the pipeline's transport, as a type: the composition root builds the real one
(workers/transport.py: Redis + RQ, or in-process) and passes it down; the domain never imports it. None
means no pipeline (demo data, some tests): nothing is announced, and events wait in the outbox."""

from typing import Any, Protocol


class Transport(Protocol):
    def enqueue(self, job: Any, *args: Any, job_id: str) -> Any:
        """Queue the job named by its dotted path (e.g. "workers.account_email.email_link_to_address")."""

    def push(self, user_id: int, message: dict[str, Any]) -> Any:
        """Send `message` to every socket of the user, in whichever web process holds them."""

    def announce_listing_changed(self) -> Any:
        """Tell every web process that the public listing may have changed."""
