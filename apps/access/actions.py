"""The audit actions the access app writes (requests, grants, resources, reports),
registered with the audit registry in ``AccessConfig.ready()``. Codes never change once
written: older trails keep verifying."""

from django.db import models


class AccessAction(models.TextChoices):
    REQUEST_SUBMITTED = "request.submitted", "Request submitted"
    REQUEST_CANCELLED = "request.cancelled", "Request cancelled"
    REQUEST_EXPIRED = "request.expired", "Request expired undecided"
    REQUEST_APPROVAL_RECORDED = "request.approval_recorded", "Approval recorded (quorum)"
    REQUEST_APPROVED = "request.approved", "Request approved"
    REQUEST_AUTO_APPROVED = "request.auto_approved", "Request auto-approved"
    REQUEST_REJECTED = "request.rejected", "Request rejected"
    GRANT_SCHEDULED = "grant.scheduled", "Grant scheduled"
    GRANT_ACTIVATED = "grant.activated", "Grant activated"
    GRANT_EXTENDED = "grant.extended", "Grant extended"
    GRANT_REVOKED = "grant.revoked", "Grant revoked"
    GRANT_EXPIRED = "grant.expired", "Grant expired"
    GRANT_BREAK_GLASS = "grant.break_glass", "Break-glass activation"
    GRANT_REVIEWED = "grant.reviewed", "Break-glass grant reviewed"
    GRANT_ENFORCED = "grant.enforced", "Grant change enforced in Pomerium"
    GRANT_EMAIL_CHANGED = "grant.email_changed", "Grant moved to the user's new email"
    RESOURCE_CREATED = "resource.created", "Resource created"
    RESOURCE_CHANGED = "resource.changed", "Resource configuration changed"
    REPORT_VIEWED = "audit.report_viewed", "Access report viewed"
    BREAK_GLASS_REFUSED = (
        "grant.break_glass_refused",
        "Break-glass refused: earlier activations not yet reviewed",
    )
