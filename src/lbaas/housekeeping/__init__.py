"""Housekeeping: purge expired DELETED rows, rotate amphora certificates, full resync, orphans.

Started by ``lbaas.main.service.Service`` next to the reconcile queue (``HousekeepingTasks``).
"""
