"""An on-call stand-in (PagerDuty, Opsgenie)."""
