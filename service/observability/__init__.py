"""Metrics and request logs of the node: what operators watch, never personal data.

`metrics` counts exchange events from committed audit entries and reads gauges from
the database at scrape time; `requestlog` assigns request ids and writes one log line
and one latency sample a request; `web` installs both in the application.
"""
