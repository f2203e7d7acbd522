"""The facade the CLI (and later the web app and the scheduler) call: run a robot, read its record."""
