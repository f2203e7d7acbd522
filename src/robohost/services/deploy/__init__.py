"""Files a sysadmin installs to run robohost hardened: ``robohost deploy render`` (README, "Hardening").

``render.py`` gathers the settings from the configuration and writes every artifact; one module per artifact
renders its text (pure functions of ``DeploySettings``). Imports the configuration and the schedule export.
"""
