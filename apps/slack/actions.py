"""The audit actions the Slack app writes (registered in ``SlackConfig.ready``).

A decision made in Slack is the ordinary ``request.approved`` / ``request.rejected`` /
``request.approval_recorded`` entry, with ``channel: slack`` and a ``slack`` object (user,
team, channel, message). What Slack sent and the portal refused is recorded here.
"""

from django.db import models


class SlackAction(models.TextChoices):
    INTERACTION_REFUSED = "slack.interaction_refused", "Slack interaction refused"
