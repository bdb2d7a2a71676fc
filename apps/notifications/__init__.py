"""Notifications: who is told what about requests and grants, by email and Slack.

An outbox: ``services.dispatch`` turns a domain event into ``Notification`` rows, the
``notifications.send`` task delivers each row and records the outcome on it.
"""
