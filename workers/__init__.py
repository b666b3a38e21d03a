"""Queue workers (RQ on Redis): thin jobs that take ids and call ``pipeline``'s use cases.

``queues`` holds the queue names and the retry/timeout policy, ``jobs`` the job functions,
``worker`` the long-running process that loads the speech model once and then takes jobs.
"""
