"""The service: the daemon (scheduler.py: APScheduler jobs, signals, sd_notify via notify.py),
when things run (schedule.py, crontab.py), one instance per store (lock.py), whether it is well
(health.py) and how it logs (logs.py)."""
