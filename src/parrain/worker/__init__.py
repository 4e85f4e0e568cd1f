"""Background jobs: each job step is one transaction through ``Database.run``.

Jobs are safe to run twice and from several processes at once: every write they make has an
id derived from what it acts on, so a second run replays instead of repeating.
"""
