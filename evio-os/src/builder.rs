//! `ServerBuilder`: a server's options and capacities, and `serve`; `Backend`: how it
//! waits.

use std::sync::Arc;
use std::time::Duration;

use evio_proto::Config;

use crate::driver::{LoopOptions, Siblings};
use crate::group::Group;
use crate::handoff::Handoff;
use crate::inbox::Inboxes;
use crate::sys::net::Spread;
#[allow(unused_imports)] // documentation links
use crate::{Action, DEFAULT_BUFFER_SPACE, DEFAULT_MAX_CONNECTIONS_CAP, RESERVED_DESCRIPTORS};
use crate::{Error, Events, addr, driver, limits, sys};

/// How the loop waits for readiness (see the crate documentation's "Backends").
///
/// Every backend runs the same loop and the same engine; they differ in what a wait
/// costs and where they exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Linux's epoll: the default on Linux and Android.
    Epoll,
    /// kqueue: the default on 64-bit macOS, FreeBSD, NetBSD, OpenBSD and DragonFly.
    Kqueue,
    /// poll(2): every unix; O(connections) per wait.
    Poll,
}

impl Backend {
    /// The backend a server uses here unless told otherwise: epoll or kqueue where
    /// this target has them, poll(2) elsewhere and in builds with
    /// `--cfg evio_force_poll`.
    pub const fn system_default() -> Backend {
        if cfg!(evio_force_poll) {
            Backend::Poll
        } else if cfg!(evio_epoll) {
            Backend::Epoll
        } else if cfg!(evio_kqueue) {
            Backend::Kqueue
        } else {
            Backend::Poll
        }
    }

    /// Whether this target has the backend.
    pub const fn is_available(self) -> bool {
        match self {
            Backend::Epoll => cfg!(evio_epoll),
            Backend::Kqueue => cfg!(evio_kqueue),
            Backend::Poll => true,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Epoll => "epoll",
            Backend::Kqueue => "kqueue",
            Backend::Poll => "poll",
        })
    }
}

/// Options and capacities for [`serve`](crate::serve); [`ServerBuilder::serve`] runs the server.
///
/// ```no_run
/// # use evio_os::{Action, Conn, Events};
/// # struct Echo;
/// # impl Events for Echo { type Context = (); }
/// use std::time::Duration;
///
/// evio_os::ServerBuilder::new()
///     .max_connections(10_000)
///     .input_capacity(4 * 1024) // no request is longer
///     .keepalive(Some(Duration::from_secs(60)))
///     .serve(Echo, &["tcp://:5000"])?; // addresses: see `serve`
/// # Ok::<(), evio_os::Error>(())
/// ```
///
/// # Defaults
///
/// - `max_connections`: what the process's descriptor limit allows (the soft
///   `RLIMIT_NOFILE`, less [`RESERVED_DESCRIPTORS`] and one per listener), at most
///   [`DEFAULT_MAX_CONNECTIONS_CAP`]; the cap also applies where the limit is
///   unlimited. On 32-bit targets `serve` also keeps the default's buffers within
///   [`DEFAULT_BUFFER_SPACE`] (512 MiB of address space). One connection more is
///   accepted and closed at once (told why first if
///   [`ServerBuilder::refusal_message`] is set). A value set with
///   [`ServerBuilder::max_connections`] (or [`ServerBuilder::config`]) above what the
///   limit allows is lowered to it when `serve` starts, with one line on standard
///   error saying so (as Redis does with `maxclients`).
/// - 16 KiB of input and 64 KiB of output buffer per connection, TCP_NODELAY on, no
///   keepalive, a 1 ms minimum tick, 64 accepts per readiness report, accept back-off
///   from 10 ms to 1 s, a 5 s lingering close, 60 s for a leaving connection to make
///   send progress (the rest of [`Config::new`]).
/// - A listen backlog of 1024, 256 events per wait, [`Backend::system_default`], no
///   refusal message, no wake coalescing ([`ServerBuilder::coalesce`]).
///
/// # Memory
///
/// Everything is reserved when `serve` starts; nothing grows with traffic. With
/// `n = max_connections`, `in = input_capacity` and `out = output_capacity`:
///
/// - **Reserved (virtual)**: `(n + 1) × (in + out)` bytes of buffers (each
///   connection's own input and output buffer, plus one loop-wide scratch buffer of
///   each), allocated zeroed so the system maps the pages lazily. At the defaults,
///   80 KiB per connection: 1.6 GB of address space for 20,000 connections.
/// - **Resident from the start**: per connection slot, the engine's slot
///   (`size_of::<Slot<C>>()`, 176 bytes on x86_64 when the handler's context `C` is
///   `()`), a 4-byte wake word, and 5 bytes of descriptor table: about 185 bytes,
///   3.7 MB for 20,000 slots. The poll(2) backend adds 16 bytes per watched socket and 4 per
///   descriptor number.
/// - **Several loops** ([`ServerBuilder::loops`]): each of the `L` loops has
///   `n / L` slots and its own scratch buffers, so the buffers reserve
///   `(n / L + 1) × L × (in + out)` bytes in all; and each loop's inbox
///   ([`ServerBuilder::inbox`]) twice over (the inbox and the copy its loop delivers
///   from): 512 KiB of bytes and about 700 KiB of post and refusal records per loop
///   at the defaults, reserved, touched as posts come.
/// - **Resident while serving**: a request read whole and answered whole passes
///   through the two scratch buffers (`in + out`, touched once). A connection touches
///   the pages of its own buffers only while it holds carry-over: a partial frame (up
///   to `in`) or output the socket has not taken yet (up to `out`). The pages stay
///   resident once touched. The handler's own state is on top.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    config: Config,
    /// `max_connections` was chosen by the user (not derived from the descriptor limit).
    max_connections_chosen: bool,
    backlog: i32,
    poll_events: usize,
    backend: Option<Backend>,
    refusal: Option<Arc<[u8]>>,
    /// Loops asked for (0: the available parallelism).
    loops: usize,
    /// Each loop's inbox: posts and bytes it holds between two of its turns.
    inbox_posts: usize,
    inbox_bytes: usize,
    balance: Balance,
}

/// How a server of several loops spreads new connections over them
/// ([`ServerBuilder::balance`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Balance {
    /// Where the kernel balances a TCP port's connections over several listening
    /// sockets (Linux, Android, FreeBSD), each loop has its own listener and the
    /// kernel picks one by a hash of the connection's addresses; every other listener
    /// (unix sockets, TCP elsewhere) hands off, as [`Balance::Handoff`]. The default.
    #[default]
    Kernel,
    /// The first loop accepts on every listener and hands each connection to the
    /// less loaded of two rotating candidate loops (their open connections and what
    /// waits for them) through a bounded ring, waking that loop only if it sleeps;
    /// when the ring is full it keeps the connection. By load, not by hash: a loop
    /// that holds many long connections gets fewer new ones.
    Handoff,
}

/// Sockets that may wait in one loop's hand-off ring.
const HANDOFF_RING: usize = 256;

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// The defaults (see the type's documentation). Reads the descriptor limit.
    pub fn new() -> Self {
        let mut config = Config::new();
        config.max_connections = limits::default_max_connections(limits::descriptor_limit());
        // CI runs the driver's suite once more with every server's sends batched.
        config.batch_sends = cfg!(evio_batch_sends);
        ServerBuilder {
            config,
            max_connections_chosen: false,
            backlog: 1024,
            poll_events: 256,
            backend: None,
            refusal: None,
            loops: 1,
            inbox_posts: 4096,
            inbox_bytes: 256 * 1024,
            balance: Balance::Kernel,
        }
    }

    /// Replaces the whole engine configuration (its `max_connections` counts as
    /// chosen: it is only lowered if the descriptor limit cannot serve it).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self.max_connections_chosen = true;
        self
    }

    /// The engine configuration as it stands (before `serve` lowers
    /// `max_connections` to the descriptor limit, if it must).
    pub fn engine_config(&self) -> &Config {
        &self.config
    }

    /// Most connections open at once; one more is accepted and closed at once. Lowered
    /// to what the descriptor limit allows, with a line on standard error, if higher.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self.max_connections_chosen = true;
        self
    }

    /// Bytes of input buffer per connection: the largest frame a handler can wait for.
    pub fn input_capacity(mut self, bytes: usize) -> Self {
        self.config.input_capacity = bytes;
        self
    }

    /// Bytes of output buffer per connection: the most output pending per connection.
    pub fn output_capacity(mut self, bytes: usize) -> Self {
        self.config.output_capacity = bytes;
        self
    }

    /// TCP_NODELAY for new connections (on by default).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.config.options.nodelay = on;
        self
    }

    /// TCP keepalive idle time (and probe interval) for new connections; `None` (the
    /// default) leaves keepalive off.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.config.options.keepalive = idle;
        self
    }

    /// Wake coalescing under load, with naps of at most `nap` ([`Config::coalesce`]):
    /// when a busy loop's last wait found a few of many active connections ready, it
    /// sleeps on a timer before polling again instead of blocking on its sockets. The
    /// clients then do not pay to wake it (on loopback, and more so under
    /// virtualisation, a good part of their cost per request), and what they send
    /// meanwhile is taken in one batch. Each nap lasts about as long as a quarter of
    /// the active connections take to send, at most `nap`: that much extra latency per
    /// batch while the loop is busy with many senders. A few clients each waiting on
    /// its reply never see a nap. `None` (the default) turns it off; the example
    /// servers use 100 µs.
    ///
    /// On Linux the loop's thread runs with a timer slack of 1 µs while coalescing is
    /// on (restored when `serve` returns), so that short naps end on time.
    pub fn coalesce(mut self, nap: Option<Duration>) -> Self {
        self.config.coalesce = nap;
        self
    }

    /// A turn's sends wait until its reads are done, then go out together
    /// ([`Config::batch_sends`]): on Linux's epoll backend in one io_uring submit
    /// (one `send(2)` each if the kernel has no io_uring for this process), elsewhere
    /// one `send(2)` each, right after one another. Off by default; the proxy examples
    /// turn it on (`--batch-sends`, their default).
    pub fn batch_sends(mut self, on: bool) -> Self {
        self.config.batch_sends = on;
        self
    }

    /// The shortest delay between ticks (a zero delay is raised to it).
    pub fn min_tick(mut self, d: Duration) -> Self {
        self.config.min_tick = d;
        self
    }

    /// Longest a lingering close (a connection closed with input still arriving, such
    /// as a frame too large for the input buffer) reads and discards before it closes
    /// anyway (default 5 s; see [`Config::linger`]).
    pub fn linger(mut self, d: Duration) -> Self {
        self.config.linger = d;
        self
    }

    /// Longest a leaving connection (closing or detaching once its output is sent) may
    /// go without send progress before it is aborted, `None` for no bound (default 60
    /// s; see [`Config::send_timeout`]): a peer that stops reading cannot hold its slot
    /// for ever.
    pub fn send_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.send_timeout = d;
        self
    }

    /// Runs `n` event loops, each on a thread of its own, for
    /// [`ServerBuilder::serve_loops`] (0: as many as
    /// [`std::thread::available_parallelism`] says). Default 1.
    ///
    /// The loops share nothing but what the handlers they are given share: each has
    /// its own engine, poller, connection pool and buffers, and a connection lives its
    /// whole life on the loop that accepted or opened it (its [`ConnId`](crate::ConnId)
    /// means something on that loop only). `max_connections` is the whole server's:
    /// each loop gets `max_connections / n` of it (at least 1), and with them its share
    /// of the buffers (see "Memory" above).
    ///
    /// How connections are spread: on Linux, Android and FreeBSD every loop has its
    /// own listening socket on each TCP port (`SO_REUSEPORT`, FreeBSD's
    /// `SO_REUSEPORT_LB`), and the kernel spreads new connections over them by a hash
    /// of their addresses, whatever the address's own `?reuseport` says. Elsewhere,
    /// and for unix sockets, the loops share one listening socket: each watches it,
    /// and the first to accept takes the connection. Neither balances by load.
    ///
    /// When one loop stops (a handler returns `Shutdown`, or its poller fails) every
    /// loop stops: each closes its connections as in any shutdown.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n;
        self
    }

    /// The size of each loop's inbox, in a server of several loops: at most `posts`
    /// writes, closes and aborts from the other loops, holding at most `bytes` bytes,
    /// between two turns of the loop. A post that does not fit is refused at once
    /// ([`WriteError::Refused`](crate::WriteError::Refused) with
    /// [`Refusal::InboxFull`](evio_proto::Refusal::InboxFull)). Default 4,096 posts and
    /// 256 KiB; both at least 1.
    ///
    /// A handler reaches a connection of another loop by its id (ids name their loop,
    /// [`ConnId::loop_index`](crate::ConnId::loop_index)): [`Loop::write`](crate::Loop::write),
    /// [`Loop::write_some`](crate::Loop::write_some) (which posts all of the bytes or
    /// none), [`Loop::close`](crate::Loop::close) and [`Loop::abort`](crate::Loop::abort)
    /// post to that loop's inbox, and say only whether the post went in. Within a loop
    /// an answer is final at once; across loops, a write lands whole or not at all,
    /// the posts from one loop to another land in the order posted, and a post refused
    /// on arrival (the connection had closed, or its output had no room) is told to the
    /// sending loop's [`Events::post_refused`](crate::Events::post_refused). Nothing
    /// orders a loop's own writes to a connection against another loop's posts to it,
    /// beyond each write staying whole. Wakes, [`Loop::room`](crate::Loop::room),
    /// [`Loop::state`](crate::Loop::state), detaching and relaying
    /// ([`Conn::wait_for`](crate::Conn::wait_for)) are for the loop's own connections.
    pub fn inbox(mut self, posts: usize, bytes: usize) -> Self {
        self.inbox_posts = posts.max(1);
        self.inbox_bytes = bytes.max(1);
        self
    }

    /// How a server of several loops spreads new connections over them (see
    /// [`Balance`]). Default [`Balance::Kernel`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// The number of loops [`ServerBuilder::serve_loops`] runs: as set with
    /// [`ServerBuilder::loops`], 0 resolved to the available parallelism.
    pub fn loop_count(&self) -> usize {
        match self.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Most connections accepted per listener readiness report.
    pub fn accept_batch(mut self, n: u32) -> Self {
        self.config.accept_batch = n;
        self
    }

    /// The listen backlog (the kernel may cap it).
    pub fn backlog(mut self, n: i32) -> Self {
        self.backlog = n;
        self
    }

    /// Size of the fixed event array of epoll and kqueue (events handled per wait);
    /// poll(2) reports every ready socket in one wait whatever this is.
    pub fn poll_events(mut self, n: usize) -> Self {
        self.poll_events = n.max(1);
        self
    }

    /// Serves with `backend` instead of [`Backend::system_default`]. A `-net` address
    /// still selects [`Backend::Poll`].
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The backend [`ServerBuilder::serve`] uses for `addrs`: poll(2) if any address
    /// has a `-net` scheme, else the one set with [`ServerBuilder::backend`], else
    /// [`Backend::system_default`]. (An address that does not parse does not count;
    /// `serve` reports it.)
    pub fn backend_for<A: AsRef<str>>(&self, addrs: &[A]) -> Backend {
        let net = addrs.iter().any(|a| addr::is_net_scheme(a.as_ref()));
        if net || cfg!(evio_force_poll) {
            return Backend::Poll;
        }
        self.backend.unwrap_or_else(Backend::system_default)
    }

    /// Bytes sent to a connection refused because every slot is taken, before it is
    /// closed: once, without blocking, best-effort (what the socket takes at once; the
    /// sending side is then shut and what the client already sent is discarded, so the
    /// close does not reset the connection and destroy the message). Empty (the
    /// default): the connection is closed without a word. A Redis-style server sets
    /// `-ERR max number of clients reached\r\n`.
    pub fn refusal_message(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.refusal = (!bytes.is_empty()).then(|| Arc::from(bytes));
        self
    }

    /// Listens on `addrs` and runs `handler` on the calling thread until a handler
    /// returns [`Action::Shutdown`]; then every connection is closed, the listeners are
    /// closed, unix socket files this server created are removed, and it returns
    /// `Ok(())`.
    ///
    /// `addrs` are `tcp://host:port`, `tcp4://…`, `tcp6://…`, `unix://path` or a bare
    /// `host:port`, with `?reuseport=true` and a `-net` scheme suffix for the portable
    /// backend: the [address table](crate::serve#addresses) is on [`serve`](crate::serve).
    ///
    /// # Errors
    ///
    /// [`Error::NoAddresses`], [`Error::Address`] (naming the address),
    /// [`Error::Bind`] / [`Error::NotASocket`] (naming the address),
    /// [`Error::TooManyListeners`], [`Error::Config`] for invalid capacities,
    /// [`Error::BackendUnavailable`] for a backend this target does not have,
    /// [`Error::Setup`] if the poller or its notifier cannot be created or the tables
    /// cannot be allocated, [`Error::Poll`] if waiting for events fails, and
    /// [`Error::LoopsNeedAFactory`] if [`ServerBuilder::loops`] asks for more than one
    /// loop (use [`ServerBuilder::serve_loops`]).
    pub fn serve<H: Events, A: AsRef<str>>(&self, handler: H, addrs: &[A]) -> Result<(), Error> {
        let loops = self.loop_count();
        if loops != 1 {
            return Err(Error::LoopsNeedAFactory { loops });
        }
        let (backend, config, specs) = self.prepare(addrs, 1)?;
        let listeners = sys::net::bind_all(addrs, &specs, self.backlog, Spread::One)?;
        let group = Group::default();
        let result = self.run_loop(backend, handler, listeners, config, &group, None);
        group.stop();
        result
    }

    /// Runs [`ServerBuilder::loop_count`] event loops on as many threads, each with the
    /// handler `make(i)` gives for loop `i` (`0..n`), until one of them stops; then
    /// every loop closes its connections, the listeners are closed, unix socket files
    /// this server created are removed, and it returns. Loop 0 runs on the calling
    /// thread, the others on threads named `evio-loop-i`; `make` is called on the
    /// loop's own thread, so a handler need not be `Send`.
    ///
    /// [`ServerBuilder::loops`] says how connections are spread over the loops and
    /// what they share. Addresses are as for [`ServerBuilder::serve`]. With one loop
    /// this is `serve(make(0), addrs)`.
    ///
    /// ```no_run
    /// # use evio_os::{Action, Conn, Events};
    /// struct Echo;
    /// impl Events for Echo {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let _ = conn.write(input);
    ///         Action::None
    ///     }
    /// }
    ///
    /// evio_os::ServerBuilder::new()
    ///     .loops(0) // one per core
    ///     .serve_loops(|_loop| Echo, &["tcp://127.0.0.1:5000"])?;
    /// # Ok::<(), evio_os::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::serve`] (for any loop's setup or poller: the first error by
    /// loop number), and [`Error::Setup`] if a loop's thread cannot be started.
    pub fn serve_loops<H, F, A>(&self, make: F, addrs: &[A]) -> Result<(), Error>
    where
        H: Events,
        F: Fn(usize) -> H + Sync,
        A: AsRef<str>,
    {
        let loops = self.loop_count();
        let (backend, config, specs) = self.prepare(addrs, loops)?;
        let spread = match (loops, self.balance) {
            (1, _) => Spread::One,
            (_, Balance::Kernel) => Spread::Kernel,
            (_, Balance::Handoff) => Spread::Handoff,
        };
        let first = sys::net::bind_all(addrs, &specs, self.backlog, spread)?;
        let mut siblings = Vec::with_capacity(loops - 1);
        for _ in 1..loops {
            siblings.push(sys::net::sibling_listeners(
                addrs,
                &first,
                &specs,
                self.backlog,
            )?);
        }
        let group = Group::default();
        let inboxes = Arc::new(Inboxes::new(loops, self.inbox_posts, self.inbox_bytes));
        let handoff = Handoff::new(loops, HANDOFF_RING);
        let mail = |index| {
            (loops > 1).then_some(Siblings {
                index,
                inboxes: &inboxes,
                handoff: &handoff,
            })
        };
        let make = &make;
        let group = &group;
        let mail = &mail;
        std::thread::scope(|scope| {
            let mut threads = Vec::with_capacity(loops - 1);
            for (i, listeners) in (1..loops).zip(siblings) {
                let spawned = std::thread::Builder::new()
                    .name(format!("evio-loop-{i}"))
                    .spawn_scoped(scope, move || {
                        let _stop = StopsGroup(group);
                        self.run_loop(backend, make(i), listeners, config, group, mail(i))
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(error) => {
                        group.stop();
                        let mut result = Err(Error::Setup {
                            what: "a loop thread",
                            error,
                        });
                        for t in threads {
                            result = result.and(joined(t));
                        }
                        return result;
                    }
                }
            }
            let mut result = {
                let _stop = StopsGroup(group);
                self.run_loop(backend, make(0), first, config, group, mail(0))
            };
            for t in threads {
                result = result.and(joined(t));
            }
            result
        })
    }

    /// Checks `addrs` and the configuration, and resolves the addresses: the backend,
    /// one loop's configuration (its share of `max_connections` when there are
    /// `loops`), and the addresses to bind. Nothing is bound yet.
    fn prepare<A: AsRef<str>>(
        &self,
        addrs: &[A],
        loops: usize,
    ) -> Result<(Backend, Config, Vec<addr::Spec>), Error> {
        if addrs.is_empty() {
            return Err(Error::NoAddresses);
        }
        if addrs.len() > evio_proto::MAX_LISTENERS {
            return Err(Error::TooManyListeners {
                given: addrs.len(),
                max: evio_proto::MAX_LISTENERS,
            });
        }
        let backend = self.backend_for(addrs);
        if !backend.is_available() {
            return Err(Error::BackendUnavailable(backend));
        }
        let mut config = self.config;
        if !self.max_connections_chosen {
            let per_connection = config.input_capacity.saturating_add(config.output_capacity);
            config.max_connections = config.max_connections.min(limits::connections_within(
                limits::DEFAULT_BUFFER_SPACE,
                per_connection,
            ));
        }
        // Before anything is bound or reserved (and after the default is fitted to the
        // address space: a default that would not fit is not the user's error).
        config.validate().map_err(Error::Config)?;
        // Each loop has its listeners (or copies of them), a poller and a notifier.
        let descriptors = addrs.len().saturating_add(2).saturating_mul(loops) - 2;
        let allowed = limits::allowed_connections(limits::descriptor_limit(), descriptors);
        if config.max_connections > allowed {
            if self.max_connections_chosen {
                eprintln!(
                    "evio: max_connections {} lowered to {allowed}: the descriptor limit \
                     (RLIMIT_NOFILE) allows no more",
                    config.max_connections
                );
            }
            config.max_connections = allowed;
        }
        config.max_connections = (config.max_connections / loops).max(1);
        // Every address is parsed, then every host name resolved, before anything is
        // bound: a bad address anywhere in the list binds nothing.
        let parsed = addrs
            .iter()
            .map(|a| addr::Address::parse(a.as_ref()).map_err(|error| (a, error)))
            .collect::<Result<Vec<_>, _>>();
        let specs = parsed
            .and_then(|parsed| {
                parsed
                    .iter()
                    .zip(addrs)
                    .map(|(p, a)| addr::resolve(p).map_err(|error| (a, error)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|(a, error)| Error::Address {
                addr: a.as_ref().to_owned(),
                error,
            })?;
        Ok((backend, config, specs))
    }

    /// What every loop's driver takes from the builder.
    fn loop_options(&self) -> LoopOptions<'_> {
        LoopOptions {
            poll_events: self.poll_events,
            refusal: self.refusal.as_deref().unwrap_or_default(),
        }
    }

    /// Runs one loop on the calling thread.
    fn run_loop<H: Events>(
        &self,
        backend: Backend,
        handler: H,
        listeners: Vec<sys::net::Listener>,
        config: Config,
        group: &Group,
        loops: Option<Siblings<'_>>,
    ) -> Result<(), Error> {
        match backend {
            #[cfg(any(evio_epoll, evio_kqueue))]
            Backend::Epoll | Backend::Kqueue => driver::run::<H, sys::native::Poller>(
                handler,
                listeners,
                self.loop_options(),
                config,
                group,
                loops,
            ),
            _ => driver::run::<H, sys::poll::Poller>(
                handler,
                listeners,
                self.loop_options(),
                config,
                group,
                loops,
            ),
        }
    }
}

/// Stops every loop of the server when dropped: when its loop returns, and when it
/// panics (the others stop, so the panic reaches the caller instead of the caller
/// waiting for them for ever).
struct StopsGroup<'a>(&'a Group);

impl Drop for StopsGroup<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A loop thread's result; a loop that panicked panics the caller of `serve_loops`
/// too, as a panic of loop 0 would.
fn joined(t: std::thread::ScopedJoinHandle<'_, Result<(), Error>>) -> Result<(), Error> {
    t.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
