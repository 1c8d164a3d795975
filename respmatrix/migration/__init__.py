"""Migration paths between engines: can data written on engine A be moved to engine B?

Three methods, each measured on real servers: DUMP/RESTORE of one key per data type
(:mod:`.dump_restore`), an RDB file saved by A and loaded by B at start (:mod:`.rdb`), and B
replicating from A (:mod:`.replication`). What "identical" means is decided by comparing the
logical content of both servers (:mod:`.snapshot`), never by comparing payload bytes.
:mod:`.matrix` runs every ordered pair and turns the outcomes into results of the family
``migration``.
"""

METHODS = ("dump-restore", "rdb", "replication")
# A cell where a server gave no reply within the timeout is measured once more, on fresh servers,
# with this many times the timeout: on busy cores a slow step (RESTORE of a Redis 8.2 vector set
# on Redis 8.0 takes 2 s of CPU before it is refused) can outlast it without anything wrong.
RETRY_FACTOR = 3
FAMILY = "migration"
