"""The commands each family's machine draws from: valid and invalid arguments alike.

Each entry is a function ``(draw, key, other) -> args``: ``key`` and ``other`` come from the
machine's key bundle (so commands meet each other's keys, of the same type or not), ``draw``
draws any further argument. Blocking forms, random mutations (SPOP without a count), clocks
(XADD ``*``, TIME), DBSIZE (it counts keys whose expiry has passed until the engine's background
cycle reclaims them, within about 100 ms) and configuration changes are left out: their replies
would differ between engines, or between runs, for reasons that are no divergence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from respmatrix.fuzz.values import (
    fields,
    floats,
    ints,
    members,
    numbers,
    small_count,
    ttl_seconds,
    unix_seconds,
    values,
)

Draw = Callable[[st.SearchStrategy[Any]], Any]
Command = Callable[[Draw, str, str], list[Any]]

V, N, INT, F, C = values(), numbers(), ints(), floats(), small_count()
TTL, AT, FIELD, MEMBER = ttl_seconds(), unix_seconds(), fields(), members()


def opt(*choices: list[Any]) -> st.SearchStrategy[list[Any]]:
    """One of several option lists (the first, usually ``[]``, is what shrinking goes to)."""
    return st.sampled_from(list(choices))


def some(strategy: st.SearchStrategy[Any], low: int = 1, high: int = 3) -> Any:
    return st.lists(strategy, min_size=low, max_size=high)


SET_OPTS = opt(
    [],
    ["NX"],
    ["XX"],
    ["GET"],
    ["KEEPTTL"],
    ["EX", "3600"],
    ["PX", "3600000"],
    ["EX", "0"],
    ["EX", "-1"],
    ["PX", "abc"],
    ["EXAT", "1"],
    ["PXAT", "1"],
    ["EXAT", "4102444800"],
    ["NX", "XX"],
    ["EX", "10", "PX", "10"],
    ["NX", "GET"],
    ["XX", "GET"],
    ["IFEQ", "v"],
    ["IFEQ", ""],
    ["IFEQ", "1", "GET"],
    ["IFEQ"],
    ["KEEPTTL", "EX", "3600"],
    ["GET", "GET"],
    ["EX"],
    ["BOGUS"],
)
EXPIRE_OPTS = opt(
    [], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["GT", "LT"], ["XX", "GT"], ["BOGUS"]
)
OBJECT = opt(["ENCODING"], ["REFCOUNT"], ["FREQ"], ["HELP"], ["BOGUS"])
SHARED: list[Command] = [
    # Values of other types under the same keys: every family meets WRONGTYPE.
    lambda d, k, o: ["SET", k, d(V)],
    lambda d, k, o: ["RPUSH", k, d(V)],
    lambda d, k, o: ["HSET", k, d(FIELD), d(V)],
    lambda d, k, o: ["SADD", k, d(MEMBER)],
    lambda d, k, o: ["ZADD", k, d(F), d(MEMBER)],
    lambda d, k, o: ["TYPE", k],
    lambda d, k, o: ["OBJECT", d(st.sampled_from(["ENCODING", "REFCOUNT"])), k],
    lambda d, k, o: ["DEL", k],
]

STRINGS: list[Command] = [
    lambda d, k, o: ["SET", k, d(V), *d(SET_OPTS)],
    lambda d, k, o: ["GET", k],
    lambda d, k, o: ["GETSET", k, d(V)],
    lambda d, k, o: ["GETDEL", k],
    lambda d, k, o: [
        "GETEX",
        k,
        *d(
            opt(
                [],
                ["PERSIST"],
                ["EX", "3600"],
                ["EX", "0"],
                ["PX", "-5"],
                ["EXAT", "1"],
                ["PERSIST", "EX", "10"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: ["SETNX", k, d(V)],
    lambda d, k, o: ["SETEX", k, d(TTL), d(V)],
    lambda d, k, o: ["PSETEX", k, d(TTL), d(V)],
    lambda d, k, o: ["MSET", k, d(V), o, d(V)],
    lambda d, k, o: ["MSET", k],
    lambda d, k, o: ["MSETNX", k, d(V), o, d(V)],
    lambda d, k, o: ["MSETEX", "2", k, d(V), o, d(V), *d(opt([], ["EX", "3600"], ["NX"], ["XX"]))],
    lambda d, k, o: ["MGET", k, o],
    lambda d, k, o: ["APPEND", k, d(V)],
    lambda d, k, o: ["STRLEN", k],
    lambda d, k, o: ["INCR", k],
    lambda d, k, o: ["DECR", k],
    lambda d, k, o: ["INCRBY", k, d(N)],
    lambda d, k, o: ["DECRBY", k, d(N)],
    lambda d, k, o: ["INCRBYFLOAT", k, d(F)],
    lambda d, k, o: ["GETRANGE", k, d(INT), d(INT)],
    lambda d, k, o: ["SUBSTR", k, d(INT), d(INT)],
    lambda d, k, o: [
        "SETRANGE",
        k,
        d(st.sampled_from(["0", "1", "5", "-1", "536870912", "abc"])),
        d(V),
    ],
    lambda d, k, o: [
        "LCS",
        k,
        o,
        *d(
            opt(
                [],
                ["LEN"],
                ["IDX"],
                ["IDX", "WITHMATCHLEN"],
                ["IDX", "MINMATCHLEN", "2"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: ["DELIFEQ", k, d(V)],
    lambda d, k, o: ["OBJECT", *d(OBJECT), k],
    lambda d, k, o: ["STRLEN", k, o],
    *SHARED,
]

KEYSPACE: list[Command] = [
    lambda d, k, o: ["SET", k, d(V), *d(SET_OPTS)],
    lambda d, k, o: ["DEL", k, o],
    lambda d, k, o: ["UNLINK", k, o],
    lambda d, k, o: ["EXISTS", k, o, k],
    lambda d, k, o: ["TOUCH", k, o],
    lambda d, k, o: ["TYPE", k],
    lambda d, k, o: ["RENAME", k, o],
    lambda d, k, o: ["RENAMENX", k, o],
    lambda d, k, o: [
        "COPY",
        k,
        o,
        *d(opt([], ["REPLACE"], ["DB", "1"], ["DB", "0"], ["DB", "99"], ["DB", "x"], ["BOGUS"])),
    ],
    lambda d, k, o: ["MOVE", k, d(st.sampled_from(["1", "0", "-1", "99", "x"]))],
    lambda d, k, o: ["EXPIRE", k, d(TTL), *d(EXPIRE_OPTS)],
    lambda d, k, o: ["PEXPIRE", k, d(TTL), *d(EXPIRE_OPTS)],
    lambda d, k, o: ["EXPIREAT", k, d(AT), *d(EXPIRE_OPTS)],
    lambda d, k, o: ["PEXPIREAT", k, d(AT), *d(EXPIRE_OPTS)],
    lambda d, k, o: ["TTL", k],
    lambda d, k, o: ["PTTL", k],
    lambda d, k, o: ["EXPIRETIME", k],
    lambda d, k, o: ["PEXPIRETIME", k],
    lambda d, k, o: ["PERSIST", k],
    lambda d, k, o: [
        "KEYS",
        d(st.sampled_from(["*", "k*", "{k}*", "?1", "[a-z]*", "\\*", "", "k[", "*1"])),
    ],
    lambda d, k, o: [
        "SCAN",
        d(st.sampled_from(["0", "-1", "", " 0", "x", "18446744073709551616"])),
        *d(
            opt(
                [],
                ["MATCH", "k*"],
                ["COUNT", "1000"],
                ["COUNT", "0"],
                ["TYPE", "string"],
                ["TYPE", "hash"],
                ["TYPE", "nosuch"],
                ["MATCH"],
                ["COUNT", "-1"],
            )
        ),
    ],
    lambda d, k, o: ["RANDOMKEY"],
    lambda d, k, o: ["DUMP", k],
    lambda d, k, o: [
        "RESTORE",
        o,
        d(st.sampled_from(["0", "3600000", "-1", "x"])),
        _DUMP_11,
        *d(
            opt(
                [],
                ["REPLACE"],
                ["ABSTTL"],
                ["IDLETIME", "10"],
                ["FREQ", "5"],
                ["REPLACE", "IDLETIME", "-1"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: ["RESTORE", o, "0", d(st.sampled_from(["", "x", "\x00" * 12]))],
    lambda d, k, o: ["OBJECT", *d(OBJECT), k],
    lambda d, k, o: [
        "SORT",
        k,
        *d(
            opt(
                [],
                ["ALPHA"],
                ["DESC", "ALPHA"],
                ["LIMIT", "0", "1"],
                ["LIMIT", "1"],
                ["BY", "nosort", "ALPHA"],
                ["STORE", o],
                ["GET", "#", "ALPHA"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: ["SORT_RO", k, *d(opt([], ["ALPHA"], ["STORE", o]))],
    lambda d, k, o: ["RPUSH", k, d(V), d(V)],
    lambda d, k, o: ["SADD", k, d(MEMBER), d(MEMBER)],
    lambda d, k, o: ["HSET", k, d(FIELD), d(V)],
    lambda d, k, o: ["XADD", k, "1-1", "f", d(V)],
    lambda d, k, o: ["SWAPDB", "0", "0"],
    lambda d, k, o: ["SELECT", d(st.sampled_from(["0", "x", "-1", "9999"]))],
]

LIST_POS = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "2",
        "-2",
        "100",
        "-100",
        "x",
        "",
        "9223372036854775807",
        "-9223372036854775808",
    ]
)
LISTS: list[Command] = [
    lambda d, k, o: ["LPUSH", k, *d(some(V))],
    lambda d, k, o: ["RPUSH", k, *d(some(V))],
    lambda d, k, o: ["LPUSHX", k, d(V)],
    lambda d, k, o: ["RPUSHX", k, d(V)],
    lambda d, k, o: ["LPOP", k, *d(opt([], ["1"], ["0"], ["-1"], ["3"], ["x"]))],
    lambda d, k, o: ["RPOP", k, *d(opt([], ["1"], ["0"], ["-1"], ["3"], ["x"]))],
    lambda d, k, o: ["LRANGE", k, d(LIST_POS), d(LIST_POS)],
    lambda d, k, o: ["LINDEX", k, d(LIST_POS)],
    lambda d, k, o: ["LSET", k, d(LIST_POS), d(V)],
    lambda d, k, o: ["LLEN", k],
    lambda d, k, o: ["LREM", k, d(LIST_POS), d(V)],
    lambda d, k, o: ["LTRIM", k, d(LIST_POS), d(LIST_POS)],
    lambda d, k, o: ["LINSERT", k, d(st.sampled_from(["BEFORE", "AFTER", "x"])), d(V), d(V)],
    lambda d, k, o: [
        "LPOS",
        k,
        d(V),
        *d(
            opt(
                [],
                ["RANK", "1"],
                ["RANK", "-1"],
                ["RANK", "0"],
                ["COUNT", "0"],
                ["COUNT", "2"],
                ["MAXLEN", "1"],
                ["RANK", "-9223372036854775808"],
                ["COUNT", "-1"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: [
        "LMOVE",
        k,
        o,
        d(st.sampled_from(["LEFT", "RIGHT", "x"])),
        d(st.sampled_from(["LEFT", "RIGHT"])),
    ],
    lambda d, k, o: ["RPOPLPUSH", k, o],
    lambda d, k, o: [
        "LMPOP",
        d(st.sampled_from(["1", "2", "0", "-1", "x"])),
        k,
        o,
        d(st.sampled_from(["LEFT", "RIGHT", "MIDDLE"])),
        *d(opt([], ["COUNT", "2"], ["COUNT", "0"], ["COUNT", "x"])),
    ],
    lambda d, k, o: ["RPUSH", k, *(["x" * 70] * d(st.integers(1, 3)))],
    lambda d, k, o: ["OBJECT", "ENCODING", k],
    *SHARED,
]

HFE_FIELDS = st.sampled_from(
    [
        ["FIELDS", "1", "f1"],
        ["FIELDS", "2", "f1", "f2"],
        ["FIELDS", "2", "f1"],
        ["FIELDS", "0"],
        ["FIELDS", "-1", "f1"],
        ["FIELDS", "x", "f1"],
        ["f1"],
        ["FIELDS", "1", "f1", "f2"],
        ["FIELD", "1", "f1"],
    ]
)
HFE_COND = opt([], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["XX", "GT"], ["GT", "GT"])
HASHES: list[Command] = [
    lambda d, k, o: [
        "HSET",
        k,
        *[x for _ in range(d(st.integers(1, 3))) for x in (d(FIELD), d(V))],
    ],
    lambda d, k, o: ["HSET", k, d(FIELD)],
    lambda d, k, o: ["HSETNX", k, d(FIELD), d(V)],
    lambda d, k, o: ["HMSET", k, d(FIELD), d(V)],
    lambda d, k, o: ["HGET", k, d(FIELD)],
    lambda d, k, o: ["HMGET", k, d(FIELD), d(FIELD)],
    lambda d, k, o: ["HDEL", k, d(FIELD), d(FIELD)],
    lambda d, k, o: ["HLEN", k],
    lambda d, k, o: ["HSTRLEN", k, d(FIELD)],
    lambda d, k, o: ["HEXISTS", k, d(FIELD)],
    lambda d, k, o: ["HKEYS", k],
    lambda d, k, o: ["HVALS", k],
    lambda d, k, o: ["HGETALL", k],
    lambda d, k, o: ["HINCRBY", k, d(FIELD), d(N)],
    lambda d, k, o: ["HINCRBYFLOAT", k, d(FIELD), d(F)],
    lambda d, k, o: [
        "HRANDFIELD",
        k,
        *d(opt([], ["2"], ["-3"], ["0"], ["2", "WITHVALUES"], ["x"], ["1", "BOGUS"])),
    ],
    lambda d, k, o: [
        "HSCAN",
        k,
        d(st.sampled_from(["0", "", " 0", "-1", "x"])),
        *d(
            opt(
                [],
                ["NOVALUES"],
                ["MATCH", "f*"],
                ["COUNT", "1000"],
                ["COUNT", "0"],
                ["NOVALUES", "NOVALUES"],
                ["BOGUS"],
            )
        ),
    ],
    lambda d, k, o: [
        d(st.sampled_from(["HEXPIRE", "HPEXPIRE"])),
        k,
        d(TTL),
        *d(HFE_COND),
        *d(HFE_FIELDS),
    ],
    lambda d, k, o: [
        d(st.sampled_from(["HEXPIREAT", "HPEXPIREAT"])),
        k,
        d(AT),
        *d(HFE_COND),
        *d(HFE_FIELDS),
    ],
    lambda d, k, o: [
        d(st.sampled_from(["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME", "HPERSIST"])),
        k,
        *d(HFE_FIELDS),
    ],
    lambda d, k, o: [
        "HGETEX",
        k,
        *d(
            opt(
                [],
                ["PERSIST"],
                ["EX", "3600"],
                ["PX", "0"],
                ["EXAT", "1"],
                ["EX", "-1"],
                ["EX", "10", "PX", "10"],
                ["PERSIST", "PERSIST"],
                ["BOGUS"],
            )
        ),
        *d(HFE_FIELDS),
    ],
    lambda d, k, o: [
        "HSETEX",
        k,
        *d(
            opt(
                [],
                ["FNX"],
                ["FXX"],
                ["NX"],
                ["XX"],
                ["EX", "3600"],
                ["PX", "0"],
                ["KEEPTTL"],
                ["EXAT", "1"],
                ["FNX", "FXX"],
                ["EX", "-1"],
                ["FNX", "EX", "3600"],
                ["BOGUS"],
            )
        ),
        *d(
            st.sampled_from(
                [
                    ["FIELDS", "1", "f1", "v"],
                    ["FIELDS", "2", "f1", "v", "f2", "w"],
                    ["FIELDS", "2", "f1", "v"],
                    ["FIELDS", "0"],
                    ["FIELDS", "1", "f1"],
                    ["f1", "v"],
                ]
            )
        ),
    ],
    lambda d, k, o: ["HGETDEL", k, *d(HFE_FIELDS)],
    lambda d, k, o: ["OBJECT", "ENCODING", k],
    *SHARED,
]

SETS: list[Command] = [
    lambda d, k, o: ["SADD", k, *d(some(MEMBER, 1, 4))],
    lambda d, k, o: ["SADD", k, *d(st.lists(INT, min_size=1, max_size=4))],
    lambda d, k, o: ["SREM", k, *d(some(MEMBER))],
    lambda d, k, o: ["SMEMBERS", k],
    lambda d, k, o: ["SISMEMBER", k, d(MEMBER)],
    lambda d, k, o: ["SMISMEMBER", k, d(MEMBER), d(MEMBER)],
    lambda d, k, o: ["SCARD", k],
    lambda d, k, o: ["SMOVE", k, o, d(MEMBER)],
    lambda d, k, o: ["SPOP", k, d(st.sampled_from(["1000", "0", "-1", "x", ""]))],
    lambda d, k, o: [
        "SRANDMEMBER",
        k,
        *d(opt([], ["2"], ["-3"], ["0"], ["100"], ["x"], ["-9223372036854775808"])),
    ],
    lambda d, k, o: [d(st.sampled_from(["SINTER", "SUNION", "SDIFF"])), k, o],
    lambda d, k, o: [d(st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])), o, k, o],
    lambda d, k, o: [
        "SINTERCARD",
        d(st.sampled_from(["1", "2", "0", "-1", "3", "x"])),
        k,
        o,
        *d(opt([], ["LIMIT", "1"], ["LIMIT", "0"], ["LIMIT", "-1"], ["BOGUS"])),
    ],
    lambda d, k, o: [
        "SSCAN",
        k,
        d(st.sampled_from(["0", "", " 0", "-1", "x"])),
        *d(opt([], ["MATCH", "*a*"], ["COUNT", "1000"], ["COUNT", "0"], ["NOVALUES"], ["BOGUS"])),
    ],
    lambda d, k, o: ["OBJECT", "ENCODING", k],
    *SHARED,
]

RANGE_BOUNDS = st.sampled_from(
    [
        "-inf",
        "+inf",
        "0",
        "1",
        "(1",
        "[a",
        "(a",
        "-",
        "+",
        "1.5",
        "x",
        "0x10",
        " 1",
        "(",
        "[",
        "nan",
        "(-inf",
    ]
)
SORTED_SETS: list[Command] = [
    lambda d, k, o: [
        "ZADD",
        k,
        *d(
            opt(
                [],
                ["NX"],
                ["XX"],
                ["GT"],
                ["LT"],
                ["CH"],
                ["INCR"],
                ["NX", "XX"],
                ["GT", "LT"],
                ["NX", "GT"],
                ["XX", "CH"],
            )
        ),
        *[x for _ in range(d(st.integers(1, 3))) for x in (d(F), d(MEMBER))],
    ],
    lambda d, k, o: ["ZADD", k, d(F)],
    lambda d, k, o: ["ZINCRBY", k, d(F), d(MEMBER)],
    lambda d, k, o: ["ZSCORE", k, d(MEMBER)],
    lambda d, k, o: ["ZMSCORE", k, d(MEMBER), d(MEMBER)],
    lambda d, k, o: ["ZREM", k, d(MEMBER)],
    lambda d, k, o: ["ZCARD", k],
    lambda d, k, o: ["ZRANK", k, d(MEMBER), *d(opt([], ["WITHSCORE"]))],
    lambda d, k, o: ["ZREVRANK", k, d(MEMBER), *d(opt([], ["WITHSCORE"]))],
    lambda d, k, o: ["ZCOUNT", k, d(RANGE_BOUNDS), d(RANGE_BOUNDS)],
    lambda d, k, o: ["ZLEXCOUNT", k, d(RANGE_BOUNDS), d(RANGE_BOUNDS)],
    lambda d, k, o: [
        "ZRANGE",
        k,
        d(RANGE_BOUNDS),
        d(RANGE_BOUNDS),
        *d(
            opt(
                [],
                ["WITHSCORES"],
                ["BYSCORE"],
                ["BYLEX"],
                ["REV"],
                ["BYSCORE", "LIMIT", "0", "1"],
                ["LIMIT", "0", "1"],
                ["BYSCORE", "REV", "WITHSCORES"],
                ["BYLEX", "WITHSCORES"],
            )
        ),
    ],
    lambda d, k, o: [
        "ZRANGEBYSCORE",
        k,
        d(RANGE_BOUNDS),
        d(RANGE_BOUNDS),
        *d(opt([], ["WITHSCORES"], ["LIMIT", "0", "1"], ["LIMIT", "1"])),
    ],
    lambda d, k, o: ["ZRANGEBYLEX", k, d(RANGE_BOUNDS), d(RANGE_BOUNDS)],
    lambda d, k, o: ["ZREMRANGEBYSCORE", k, d(RANGE_BOUNDS), d(RANGE_BOUNDS)],
    lambda d, k, o: ["ZREMRANGEBYRANK", k, d(INT), d(INT)],
    lambda d, k, o: ["ZRANGESTORE", o, k, d(INT), d(INT)],
    lambda d, k, o: [
        d(st.sampled_from(["ZPOPMIN", "ZPOPMAX"])),
        k,
        *d(opt([], ["1"], ["0"], ["-1"], ["3"], ["x"])),
    ],
    lambda d, k, o: [
        "ZMPOP",
        d(st.sampled_from(["1", "2", "0"])),
        k,
        o,
        d(st.sampled_from(["MIN", "MAX", "MID"])),
        *d(opt([], ["COUNT", "2"])),
    ],
    lambda d, k, o: ["ZRANDMEMBER", k, *d(opt([], ["2"], ["-2"], ["0"], ["2", "WITHSCORES"]))],
    lambda d, k, o: [
        d(st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"])),
        "2",
        k,
        o,
        *d(
            opt(
                [], ["WITHSCORES"], ["WEIGHTS", "2", d(F)], ["AGGREGATE", "MAX"], ["AGGREGATE", "x"]
            )
        ),
    ],
    lambda d, k, o: [
        d(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE"])),
        o,
        "2",
        k,
        o,
        *d(opt([], ["WEIGHTS", d(F), "1"])),
    ],
    lambda d, k, o: ["ZINTERCARD", "2", k, o, *d(opt([], ["LIMIT", "1"], ["LIMIT", "-1"]))],
    lambda d, k, o: [
        "ZSCAN",
        k,
        d(st.sampled_from(["0", "", "-1"])),
        *d(opt([], ["NOSCORES"], ["MATCH", "*"], ["COUNT", "1000"], ["NOVALUES"])),
    ],
    lambda d, k, o: ["OBJECT", "ENCODING", k],
    *SHARED,
]

STREAM_IDS = st.sampled_from(
    [
        "1-1",
        "1-2",
        "2-0",
        "0-1",
        "5",
        "5-*",
        "0-0",
        "3-1",
        "18446744073709551615-18446744073709551615",
        "1-",
        "abc",
        "-1",
        "1-18446744073709551615",
    ]
)
READ_IDS = st.sampled_from(["0", "0-0", "1-1", "$", "+", "-", ">", "x", "2"])
STREAMS: list[Command] = [
    lambda d, k, o: [
        "XADD",
        k,
        *d(
            opt(
                [],
                ["NOMKSTREAM"],
                ["MAXLEN", "1"],
                ["MAXLEN", "~", "1"],
                ["MINID", "2"],
                ["MAXLEN", "-1"],
                ["LIMIT", "1"],
                ["KEEPREF"],
                ["MAXLEN", "=", "0"],
            )
        ),
        d(STREAM_IDS),
        *d(opt(["f", "v"], ["f"], ["f", "v", "g", "w"], [])),
    ],
    lambda d, k, o: ["XLEN", k],
    lambda d, k, o: [
        "XRANGE",
        k,
        d(READ_IDS),
        d(READ_IDS),
        *d(opt([], ["COUNT", "1"], ["COUNT", "0"], ["COUNT", "-1"])),
    ],
    lambda d, k, o: ["XREVRANGE", k, d(READ_IDS), d(READ_IDS)],
    lambda d, k, o: ["XDEL", k, d(STREAM_IDS)],
    lambda d, k, o: [
        "XTRIM",
        k,
        *d(
            opt(
                ["MAXLEN", "1"],
                ["MINID", "2"],
                ["MAXLEN", "~", "0"],
                ["MAXLEN", "x"],
                ["MAXLEN", "1", "LIMIT", "1"],
                ["MAXLEN", "1", "ACKED"],
                [],
            )
        ),
    ],
    lambda d, k, o: [
        "XREAD",
        *d(opt([], ["COUNT", "1"], ["COUNT", "0"])),
        "STREAMS",
        k,
        *d(opt([d(READ_IDS)], [o, d(READ_IDS), d(READ_IDS)], [o, d(READ_IDS)])),
    ],
    lambda d, k, o: [
        "XGROUP",
        "CREATE",
        k,
        d(st.sampled_from(["g", "h"])),
        d(READ_IDS),
        *d(
            opt([], ["MKSTREAM"], ["ENTRIESREAD", "5"], ["ENTRIESREAD", "-1"], ["ENTRIESREAD", "x"])
        ),
    ],
    lambda d, k, o: [
        "XGROUP",
        "SETID",
        k,
        "g",
        d(READ_IDS),
        *d(opt([], ["ENTRIESREAD", "1"], ["ENTRIESREAD", "100"])),
    ],
    lambda d, k, o: [
        "XGROUP",
        d(st.sampled_from(["DESTROY", "CREATECONSUMER", "DELCONSUMER"])),
        k,
        "g",
        *d(opt([], ["c"])),
    ],
    lambda d, k, o: [
        "XREADGROUP",
        "GROUP",
        "g",
        d(st.sampled_from(["c", "d"])),
        *d(opt([], ["COUNT", "1"], ["NOACK"])),
        "STREAMS",
        k,
        d(READ_IDS),
    ],
    lambda d, k, o: ["XACK", k, "g", d(STREAM_IDS)],
    lambda d, k, o: [
        "XPENDING",
        k,
        "g",
        *d(opt([], ["-", "+", "10"], ["-", "+", "10", "c"], ["IDLE", "0", "-", "+", "10"], ["x"])),
    ],
    lambda d, k, o: ["XCLAIM", k, "g", "c", "0", d(STREAM_IDS), *d(opt([], ["JUSTID"], ["FORCE"]))],
    lambda d, k, o: [
        "XAUTOCLAIM",
        k,
        "g",
        "c",
        "0",
        d(READ_IDS),
        *d(opt([], ["COUNT", "1"], ["JUSTID"])),
    ],
    lambda d, k, o: ["XINFO", "STREAM", k, *d(opt([], ["FULL"], ["FULL", "COUNT", "1"]))],
    lambda d, k, o: ["XINFO", d(st.sampled_from(["GROUPS", "CONSUMERS"])), k, *d(opt([], ["g"]))],
    lambda d, k, o: [
        "XSETID",
        k,
        d(STREAM_IDS),
        *d(opt([], ["ENTRIESADDED", "10"], ["MAXDELETEDID", "1-1"])),
    ],
    lambda d, k, o: ["XDELEX", k, "IDS", "1", d(STREAM_IDS)],
    lambda d, k, o: ["XACKDEL", k, "g", "IDS", "1", d(STREAM_IDS)],
    lambda d, k, o: ["OBJECT", "ENCODING", k],
    *SHARED,
]

BITS: list[Command] = [
    lambda d, k, o: [
        "SETBIT",
        k,
        d(st.sampled_from(["0", "1", "7", "100", "-1", "4294967296", "x"])),
        d(st.sampled_from(["0", "1", "2"])),
    ],
    lambda d, k, o: ["GETBIT", k, d(st.sampled_from(["0", "1", "7", "100", "-1", "x"]))],
    lambda d, k, o: [
        "BITCOUNT",
        k,
        *d(
            opt(
                [],
                ["0", "-1"],
                ["0"],
                ["1", "2", "BIT"],
                ["0", "-1", "BYTE"],
                ["0", "-1", "x"],
                ["x", "1"],
            )
        ),
    ],
    lambda d, k, o: [
        "BITPOS",
        k,
        d(st.sampled_from(["0", "1", "2"])),
        *d(opt([], ["0"], ["0", "-1"], ["2", "10", "BIT"], ["x"])),
    ],
    lambda d, k, o: [
        "BITOP",
        d(st.sampled_from(["AND", "OR", "XOR", "NOT", "DIFF", "ONE", "ANDOR", "DIFF1", "x"])),
        o,
        k,
        *d(opt([], [o])),
    ],
    lambda d, k, o: [
        "BITFIELD",
        k,
        *d(
            opt(
                ["GET", "u8", "0"],
                ["SET", "i8", "0", "-1"],
                ["INCRBY", "u2", "100", "1"],
                ["OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5"],
                ["OVERFLOW", "SAT", "INCRBY", "i8", "0", "200"],
                ["GET", "u64", "0"],
                ["GET", "i64", "#1"],
                ["SET", "u8", "#0", "256"],
                ["GET", "x", "0"],
            )
        ),
    ],
    lambda d, k, o: ["BITFIELD_RO", k, *d(opt(["GET", "u8", "0"], ["SET", "u8", "0", "1"]))],
    lambda d, k, o: ["SET", k, d(V)],
    lambda d, k, o: ["GET", k],
    lambda d, k, o: ["APPEND", k, d(V)],
    *SHARED,
]

HLL: list[Command] = [
    lambda d, k, o: ["PFADD", k, *d(st.lists(MEMBER, max_size=4))],
    lambda d, k, o: ["PFADD", k, *[f"e{i}" for i in range(d(st.sampled_from([10, 200, 3000])))]],
    lambda d, k, o: ["PFCOUNT", k, *d(opt([], [o]))],
    lambda d, k, o: ["PFMERGE", o, k, *d(opt([], [o]))],
    lambda d, k, o: ["GET", k],
    lambda d, k, o: ["SETRANGE", k, d(st.sampled_from(["0", "4", "15", "16"])), d(V)],
    lambda d, k, o: ["PFDEBUG", d(st.sampled_from(["ENCODING", "GETREG", "TODENSE", "x"])), k],
    lambda d, k, o: ["STRLEN", k],
    *SHARED,
]

LUA = [
    "return 1",
    "return 'x'",
    "return {1,2,{3,'a'}}",
    "return 1.5",
    "return {1,nil,3}",
    "return redis.call('GET', KEYS[1])",
    "return redis.call('SET', KEYS[1], ARGV[1])",
    "return redis.pcall('INCR', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return redis.call('NOSUCH')",
    "return redis.pcall('NOSUCH')",
    "return redis.error_reply('My Error')",
    "return redis.error_reply('-X custom')",
    "return redis.status_reply('FINE')",
    "return {err='x'}",
    "return {ok='y'}",
    "error('boom')",
    "error({err='ERR tbl'})",
    "return tostring(0.1)",
    "return x",
    "x = 1",
    "redis.setresp(3); return redis.call('HGETALL', KEYS[1])",
    "redis.setresp(3); return {double=1.5}",
    "redis.setresp(3); return {map={a=1}}",
    "redis.setresp(3); return {set={a=true}}",
    "return {map={a=1}}",
    "return redis.sha1hex('')",
    "return #ARGV",
    "return cjson.encode({1,2,{a=1}})",
    "return cjson.decode('[1,2]')",
    "return bit.band(7,3)",
    "return struct.pack('>I2', 1)",
    "return cmsgpack.pack({1})",
    "return redis.call('EVAL','return 1','0')",
    "return math.huge",
    "return -math.huge",
    "return type(redis.call('GET', KEYS[1]))",
    "return redis.call('LPUSH', KEYS[1], 'a')",
    "return redis.setresp(4)",
    "return redis.call()",
    "return redis.call(1)",
    "return pcall(function() error({err='E'}) end)",
    "return string.format('%.17g', 0.1)",
    "return loadstring('return 1')()",
    "return redis.call('SCRIPT','FLUSH')",
    "return redis.call('HSET', KEYS[1], 'f', 'v')",
    "return redis.call('GET')",
    "return {1, 'two', {err='three'}}",
    "return true",
    "return false",
    "return nil",
    "return redis.call('SELECT', '1')",
    "return table.getn({1,2})",
    "return unpack({1,2})",
    "local t = {} t[1]=1 t[3]=3 return t",
    "return 0/0",
    "return 1/0",
    "return 2^53",
    "return 9007199254740993",
    "return -0.0",
    "return 3.99",
    "return '\\0'",
    "return redis.pcall('SET', KEYS[1])",
    "return redis.call('EXPIRE', KEYS[1], 'x')",
    "return string.rep('a', 3)",
    "return os.time == nil",
    "return debug == nil",
    "return getmetatable('')",
    "return redis.REPL_ALL",
    "return _G.redis ~= nil",
    "redis.set_repl(redis.REPL_NONE); return 1",
    "return redis.breakpoint()",
    "return redis.debug('x')",
    "return rawget(_G, 'x')",
    "return collectgarbage('count') > 0",
]
LUA_BODY = st.sampled_from(LUA)
LIBRARY = (
    "#!lua name=lib\n"
    "redis.register_function('f1', function(keys, args) return args[1] end)\n"
    "redis.register_function{function_name='f2', callback=function(keys, args) "
    "return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n"
)
BAD_LIBRARY = st.sampled_from(
    [
        "#!lua name=lib\nreturn 1",
        "#!lua\nredis.register_function('f', function() end)",
        "#!nolua name=x\n",
        "#!lua name=lib2\nredis.register_function('f1', function() end)",
        "#!lua name=lib3\nredis.call('GET', 'x')",
        "no shebang",
        "#!lua name=lib4 bogus=1\n",
        "#!lua name=lib5\nredis.register_function('f', 1)",
    ]
)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


SCRIPTING: list[Command] = [
    lambda d, k, o: ["EVAL", d(LUA_BODY), "1", k, d(V)],
    lambda d, k, o: ["EVAL", d(LUA_BODY), "0"],
    lambda d, k, o: ["EVAL", "return 1", d(st.sampled_from(["-1", "2", "x", ""]))],
    lambda d, k, o: ["EVAL_RO", d(LUA_BODY), "1", k],
    lambda d, k, o: ["EVALSHA", sha1(d(LUA_BODY)), "1", k, d(V)],
    lambda d, k, o: ["EVALSHA", d(st.sampled_from(["x", "0" * 40, "A" * 40])), "0"],
    lambda d, k, o: ["SCRIPT", "LOAD", d(LUA_BODY)],
    lambda d, k, o: ["SCRIPT", "EXISTS", sha1(d(LUA_BODY)), "0" * 40],
    lambda d, k, o: [
        "SCRIPT",
        d(st.sampled_from(["FLUSH", "KILL", "BOGUS"])),
        *d(opt([], ["SYNC"], ["ASYNC"], ["x"])),
    ],
    lambda d, k, o: ["FUNCTION", "LOAD", *d(opt([], ["REPLACE"])), LIBRARY],
    lambda d, k, o: ["FUNCTION", "LOAD", d(BAD_LIBRARY)],
    lambda d, k, o: [
        "FUNCTION",
        "LIST",
        *d(opt([], ["WITHCODE"], ["LIBRARYNAME", "lib"], ["BOGUS"])),
    ],
    lambda d, k, o: ["FUNCTION", "DELETE", d(st.sampled_from(["lib", "nosuch"]))],
    lambda d, k, o: ["FUNCTION", "STATS"],
    lambda d, k, o: ["FUNCTION", "DUMP"],
    lambda d, k, o: ["FUNCTION", "RESTORE", d(st.sampled_from(["", "x"]))],
    lambda d, k, o: ["FCALL", d(st.sampled_from(["f1", "f2", "nosuch"])), "1", k, d(V)],
    lambda d, k, o: ["FCALL_RO", d(st.sampled_from(["f1", "f2"])), "1", k],
    lambda d, k, o: ["FCALL", "f1", d(st.sampled_from(["-1", "5", "x"]))],
    lambda d, k, o: ["SET", k, d(V)],
    lambda d, k, o: ["RPUSH", k, d(V)],
    lambda d, k, o: ["HSET", k, "f", d(V)],
]

_BASIC = STRINGS[:6] + LISTS[:6] + HASHES[:4]
TRANSACTIONS: list[Command] = [
    lambda d, k, o: ["MULTI"],
    lambda d, k, o: ["MULTI"],
    lambda d, k, o: ["EXEC"],
    lambda d, k, o: ["EXEC"],
    lambda d, k, o: ["DISCARD"],
    lambda d, k, o: ["WATCH", k, *d(opt([], [o]))],
    lambda d, k, o: ["UNWATCH"],
    lambda d, k, o: ["SET", k],
    lambda d, k, o: ["NOSUCHCOMMAND", k],
    lambda d, k, o: ["INCR", k],
    lambda d, k, o: ["SET", k, d(V), "IFEQ", d(V)],
    lambda d, k, o: ["DELIFEQ", k, d(V)],
    lambda d, k, o: ["HSETEX", k, "EX", "3600", "FIELDS", "1", "f", "v"],
    lambda d, k, o: ["EVAL", d(LUA_BODY), "1", k],
    lambda d, k, o: ["PING"],
    lambda d, k, o: ["SELECT", d(st.sampled_from(["0", "1", "x"]))],
    lambda d, k, o: ["SWAPDB", "0", "1"],
    lambda d, k, o: ["MOVE", k, "1"],
    lambda d, k, o: ["FLUSHDB"],
    lambda d, k, o: ["CLIENT", "SETNAME", "x y"],
    *[c for c in _BASIC],
]

FAMILIES: dict[str, list[Command]] = {
    "strings": STRINGS,
    "keyspace": KEYSPACE,
    "lists": LISTS,
    "hashes": HASHES,
    "sets": SETS,
    "sorted-sets": SORTED_SETS,
    "streams": STREAMS,
    "bitmaps": BITS,
    "hyperloglog": HLL,
    "transactions": TRANSACTIONS,
    "scripting": SCRIPTING,
}

# DUMP of the string "v" in RDB 11, the oldest format every engine here reads.
_DUMP_11 = bytes.fromhex("0001760b00f8d773c1e4a76347")
