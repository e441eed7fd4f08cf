//! How many connections the process's descriptor limit allows.

/// Descriptors a server keeps out of its connections' reach.
///
/// They are for standard input, output and error, the poller, its wake notifier, and
/// the handler's own files (as Redis keeps 32 beside `maxclients`). Each listener
/// takes one more.
pub const RESERVED_DESCRIPTORS: usize = 32;

/// The most connections a default [`ServerBuilder`](crate::ServerBuilder) serves,
/// whatever the descriptor limit.
///
/// Every slot costs about 150 resident bytes and 80 KiB of reserved address space
/// from the start, and limits of a million (or unlimited) are common in containers.
/// Set [`ServerBuilder::max_connections`] to go beyond it.
///
/// [`ServerBuilder::max_connections`]: crate::ServerBuilder::max_connections
pub const DEFAULT_MAX_CONNECTIONS_CAP: usize = 65_536;

/// The most address space the buffers of a server whose `max_connections` was not
/// chosen may reserve: no bound beyond [`DEFAULT_MAX_CONNECTIONS_CAP`] on 64-bit
/// targets (reserved pages cost nothing until touched), 512 MiB on 32-bit ones, where
/// the address space (4 GiB at most, shared with everything else in the process) runs
/// out first: 6,553 connections at the default 80 KiB of buffers each.
pub const DEFAULT_BUFFER_SPACE: usize = if usize::BITS >= 64 {
    usize::MAX
} else {
    512 << 20
};

/// The most connections whose buffers (`per_connection` bytes each, plus one set of
/// loop-wide scratch buffers) fit in `space` bytes; at least one.
pub(crate) fn connections_within(space: usize, per_connection: usize) -> usize {
    (space / per_connection.max(1)).saturating_sub(1).max(1)
}

/// The soft `RLIMIT_NOFILE`; `None` when unlimited.
pub(crate) fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The most connections a server with `listeners` listeners can hold open under
/// `limit` descriptors (at least one, so a tiny limit still serves).
pub(crate) fn allowed_connections(limit: Option<u64>, listeners: usize) -> usize {
    let Some(limit) = limit else {
        return usize::MAX;
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    limit
        .saturating_sub(RESERVED_DESCRIPTORS + listeners)
        .max(1)
}

/// The default `max_connections` under `limit`, counting one listener.
pub(crate) fn default_max_connections(limit: Option<u64>) -> usize {
    allowed_connections(limit, 1).min(DEFAULT_MAX_CONNECTIONS_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_less_the_reserve_and_the_listeners() {
        assert_eq!(allowed_connections(Some(20_000), 1), 20_000 - 33);
        assert_eq!(allowed_connections(Some(20_000), 4), 20_000 - 36);
        assert_eq!(allowed_connections(Some(1024), 1), 1024 - 33);
        assert_eq!(
            allowed_connections(Some(10), 1),
            1,
            "a tiny limit still serves"
        );
        assert_eq!(allowed_connections(None, 1), usize::MAX);
    }

    #[test]
    fn connections_within_an_address_space() {
        let default = 80 * 1024;
        assert_eq!(connections_within(512 << 20, default), 6_553 - 1);
        assert_eq!(
            connections_within(usize::MAX, default),
            usize::MAX / default - 1
        );
        assert_eq!(connections_within(1000, default), 1, "at least one");
        assert_eq!(connections_within(1000, 0), 999);
    }

    #[test]
    fn the_default_follows_the_limit_up_to_the_cap() {
        assert_eq!(default_max_connections(Some(20_000)), 20_000 - 33);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            DEFAULT_MAX_CONNECTIONS_CAP
        );
        assert_eq!(default_max_connections(None), DEFAULT_MAX_CONNECTIONS_CAP);
    }
}
