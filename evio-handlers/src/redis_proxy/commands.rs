//! What the proxy does with each command: answer it, forward it to the backend of its
//! key, split it over the backends, or refuse it.

/// What to do with a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `PING [message]`: answered here.
    Ping,
    /// `ECHO message`: answered here.
    Echo,
    /// `QUIT`: `+OK`, then the connection closes (after the replies before it).
    Quit,
    /// The command's key is its first argument and it has no other key: forwarded
    /// whole to that key's backend.
    Key,
    /// `MGET`: split over the backends, the values merged in the keys' order.
    Mget,
    /// `DEL` or `EXISTS`: split over the backends, the counts added.
    Sum,
    /// Anything else: refused with an error naming it.
    Refused,
}

/// Longest command name looked up (longer ones are unknown).
const MAX_NAME: usize = 24;

/// The route of the command named `name` (in any case).
pub fn route(name: &[u8]) -> Route {
    if name.len() > MAX_NAME {
        return Route::Refused;
    }
    let mut upper = [0u8; MAX_NAME];
    for (u, b) in upper.iter_mut().zip(name) {
        *u = b.to_ascii_uppercase();
    }
    match &upper[..name.len()] {
        // The hot pair first (the match is a chain of comparisons by length).
        b"GET" | b"SET" => Route::Key,
        b"PING" => Route::Ping,
        b"ECHO" => Route::Echo,
        b"QUIT" => Route::Quit,
        b"MGET" => Route::Mget,
        b"DEL" | b"EXISTS" => Route::Sum,
        name if single_key(name) => Route::Key,
        _ => Route::Refused,
    }
}

/// Commands whose first argument is their only key (Redis 7's key specs), minus those
/// that block a connection (BLPOP and the like would hold up every client on it) or
/// write a second key named elsewhere (GEORADIUS's STORE).
fn single_key(name: &[u8]) -> bool {
    matches!(
        name,
        // strings
        b"SETNX" | b"SETEX" | b"PSETEX" | b"APPEND" | b"STRLEN" | b"INCR" | b"DECR"
            | b"INCRBY" | b"DECRBY" | b"INCRBYFLOAT" | b"GETSET" | b"GETDEL" | b"GETEX"
            | b"GETRANGE" | b"SETRANGE" | b"SUBSTR" | b"GETBIT" | b"SETBIT" | b"BITCOUNT"
            | b"BITPOS" | b"BITFIELD" | b"BITFIELD_RO"
            // keys
            | b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" | b"EXPIRETIME"
            | b"PEXPIRETIME" | b"TTL" | b"PTTL" | b"PERSIST" | b"TYPE" | b"DUMP" | b"RESTORE"
            | b"SORT_RO"
            // hashes
            | b"HSET" | b"HSETNX" | b"HGET" | b"HMSET" | b"HMGET" | b"HDEL" | b"HLEN"
            | b"HSTRLEN" | b"HEXISTS" | b"HINCRBY" | b"HINCRBYFLOAT" | b"HKEYS" | b"HVALS"
            | b"HGETALL" | b"HSCAN" | b"HRANDFIELD"
            // lists
            | b"LPUSH" | b"LPUSHX" | b"RPUSH" | b"RPUSHX" | b"LPOP" | b"RPOP" | b"LLEN"
            | b"LINDEX" | b"LSET" | b"LRANGE" | b"LTRIM" | b"LREM" | b"LINSERT" | b"LPOS"
            // sets
            | b"SADD" | b"SREM" | b"SCARD" | b"SISMEMBER" | b"SMISMEMBER" | b"SMEMBERS"
            | b"SPOP" | b"SRANDMEMBER" | b"SSCAN"
            // sorted sets
            | b"ZADD" | b"ZINCRBY" | b"ZREM" | b"ZCARD" | b"ZCOUNT" | b"ZSCORE" | b"ZMSCORE"
            | b"ZRANK" | b"ZREVRANK" | b"ZRANGE" | b"ZRANGEBYSCORE" | b"ZREVRANGE"
            | b"ZREVRANGEBYSCORE" | b"ZRANGEBYLEX" | b"ZREVRANGEBYLEX" | b"ZLEXCOUNT"
            | b"ZREMRANGEBYRANK" | b"ZREMRANGEBYSCORE" | b"ZREMRANGEBYLEX" | b"ZPOPMIN"
            | b"ZPOPMAX" | b"ZSCAN" | b"ZRANDMEMBER"
            // hyperloglog, geo, streams
            | b"PFADD" | b"GEOADD" | b"GEODIST" | b"GEOHASH" | b"GEOPOS" | b"GEORADIUS_RO"
            | b"GEORADIUSBYMEMBER_RO" | b"GEOSEARCH" | b"XADD" | b"XLEN" | b"XRANGE"
            | b"XREVRANGE" | b"XDEL" | b"XTRIM" | b"XACK" | b"XPENDING" | b"XCLAIM"
            | b"XAUTOCLAIM"
            // one key only: several are refused (see `Route::Key`'s arity check)
            | b"PFCOUNT" | b"UNLINK" | b"TOUCH"
    )
}

/// Commands that take exactly one key however many arguments follow it: with more
/// arguments they name more keys, which this proxy does not split.
pub fn keys_are_all_arguments(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"PFCOUNT")
        || name.eq_ignore_ascii_case(b"UNLINK")
        || name.eq_ignore_ascii_case(b"TOUCH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_route_in_any_case() {
        assert_eq!(route(b"get"), Route::Key);
        assert_eq!(route(b"Set"), Route::Key);
        assert_eq!(route(b"hgetall"), Route::Key);
        assert_eq!(route(b"ping"), Route::Ping);
        assert_eq!(route(b"ECHO"), Route::Echo);
        assert_eq!(route(b"quit"), Route::Quit);
        assert_eq!(route(b"mget"), Route::Mget);
        assert_eq!(route(b"del"), Route::Sum);
        assert_eq!(route(b"exists"), Route::Sum);
        for refused in [
            &b"CONFIG"[..],
            b"flushdb",
            b"KEYS",
            b"SELECT",
            b"MSET",
            b"RENAME",
            b"BLPOP",
            b"EVAL",
            b"MULTI",
            b"SUBSCRIBE",
            b"",
            b"A_VERY_LONG_COMMAND_NAME_INDEED_YES",
        ] {
            assert_eq!(route(refused), Route::Refused, "{refused:?}");
        }
    }
}
