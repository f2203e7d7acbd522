"""``robohost serve``: the long-running process that runs robots on their schedule and at people's request."""
