"""`manage.py migrate_locked`: `migrate` under a lock, so that replicas starting together migrate one at a time.

Without it, two pods of a new release race through the same migrations: one of them fails half-way (a table or a
row of django_migrations already there) and restarts. With it, the first takes the lock and migrates; the others
wait, then find nothing left to apply.
"""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

# The key of PostgreSQL's advisory lock: any constant shared by every replica will do; this one is "mlflow" in
# ASCII, unlikely to be used by another application on the same database.
ADVISORY_LOCK_KEY = 0x6D6C666C6F77


class Command(BaseCommand):
    help = ("Apply database migrations while holding a lock (a PostgreSQL advisory lock, or a file lock on the "
            "SQLite database's folder), so that replicas starting at once migrate once.")

    def handle(self, *args, verbosity, **options):
        connection = connections[DEFAULT_DB_ALIAS]
        lock = _advisory_lock if connection.vendor == "postgresql" else _folder_lock
        with lock(connection, self.stdout.write):
            call_command("migrate", interactive=False, verbosity=verbosity)


@contextmanager
def _advisory_lock(connection, log):
    """A session-level advisory lock: held across migrate's transactions, dropped by PostgreSQL if we die."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::bigint)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            log("another process is migrating this database: waiting for it to finish")
            cursor.execute("SELECT pg_advisory_lock(%s::bigint)", [ADVISORY_LOCK_KEY])
    log("migration lock taken")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::bigint)", [ADVISORY_LOCK_KEY])


@contextmanager
def _folder_lock(connection, log):
    """flock on the SQLite file's folder (created if needed): replicas sharing the volume take turns. The folder,
    not a lock file, so that nothing is left beside the database; the kernel drops the lock if we die."""
    folder = Path(connection.settings_dict["NAME"]).parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is migrating {connection.settings_dict['NAME']}: waiting for it to finish")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        log("migration lock taken")
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock
