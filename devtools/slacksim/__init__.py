"""A Slack stand-in: the Web API methods the portal calls, and signed interactivity.

Written from Slack's published documentation, never from the portal's client.
"""
