"""Schedules: which of a robot's jobs are due when, from the config, the exchange calendar and cron.

``plan`` answers "what is due when" (``Schedule``, ``PlannedJob``, ``robot_schedules``); ``calendars`` gives
trading sessions; ``expressions`` turns schedule times into UTC times; ``export`` writes crontab lines and
systemd timers; ``zones`` finds the server's time zone. Nothing here reads the clock: callers pass the time.
"""
