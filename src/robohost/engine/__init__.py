"""The application core: strategy boundary, paper broker, session loop. No I/O, no frameworks."""
