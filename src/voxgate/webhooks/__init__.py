"""Call events to the connection's ``webhook_event_url``, signed with Ed25519 as Telnyx does."""

from voxgate.webhooks.delivery import WebhookSender
from voxgate.webhooks.signing import WebhookSigner

__all__ = ["WebhookSender", "WebhookSigner"]
