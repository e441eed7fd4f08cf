//! The fuzz targets' committed inputs, in the ordinary test suite: the hand-made seeds
//! are written here from readable scripts (and checked to be committed as written),
//! and every file under `fuzz/seeds/` and `fuzz/artifacts/` is replayed through the
//! same functions the targets call. A crash a fuzzer found is fixed with its input
//! copied into `fuzz/seeds/<target>/`, where this test keeps replaying it.
//!
//! Write the seeds again after changing a script here (or the input format):
//! `EVIO_WRITE_SEEDS=1 cargo test -p evio-handlers --features sim --test fuzz_corpus`.

use evio_handlers::sim::fuzz::{
    ScriptHandler, engine_script, http_streams, proxy_script, redis_requests_split, redis_streams,
    tls_script,
};
use evio_proto::{Config, Duration};
use evio_sim::seeds::{committed_inputs, keep_seed};
use evio_sim::{FaultKind, FaultRates, FuzzCase, ScriptedEvent, SimConfig};

use ScriptedEvent::{
    Advance, Close, Connect, HalfClose, Poll, Read, Reset, Send, Wake, WakeServer,
};

/// What a fuzz target calls: its check of one input.
type Check = fn(&[u8]) -> Result<(), String>;

/// The targets, each with the function its fuzz target calls.
const TARGETS: [(&str, Check); 7] = [
    ("engine_script", engine_script),
    ("proxy_script", proxy_script),
    ("redis_handler", redis_streams),
    ("redis_parse", redis_requests_split),
    ("http_handler", http_streams),
    ("addr_parse", evio_os::fuzz::addr_round_trip),
    ("tls_script", tls_script),
];

fn send(client: u16, bytes: &[u8]) -> ScriptedEvent {
    Send {
        client,
        bytes: bytes.to_vec(),
    }
}

/// `bytes` sent one byte at a time.
fn trickle(client: u16, bytes: &[u8]) -> Vec<ScriptedEvent> {
    bytes.iter().map(|&b| send(client, &[b])).collect()
}

/// A client for each stream: it connects, sends the stream, then `then` (which a
/// stream that ends in an error must not get answered).
fn one_client_each(streams: &[&[u8]], then: &[u8]) -> Vec<ScriptedEvent> {
    let mut script = Vec::new();
    for (client, bytes) in streams.iter().enumerate() {
        script.push(Connect { listener: 0 });
        script.push(send(client as u16, bytes));
        script.push(send(client as u16, then));
    }
    script
}

/// A fault-free case with room for a few clients: buffers of 512 bytes, socket
/// windows of 64 (so replies and reads go in pieces), a 5 ms ticker.
fn case(seed: u64, script: Vec<ScriptedEvent>) -> FuzzCase {
    FuzzCase {
        seed,
        config: SimConfig {
            engine: Config {
                max_connections: 8,
                input_capacity: 512,
                output_capacity: 512,
                accept_batch: 4,
                ..Config::new()
            },
            listeners: 1,
            recv_window: 64,
            send_window: 64,
            rates: FaultRates::none(),
            ticker: Some(Duration::from_millis(5)),
            ..SimConfig::from_seed(seed)
        },
        script,
    }
}

/// The same case with every fault at `per_million`.
fn with_faults(mut case: FuzzCase, per_million: u32) -> FuzzCase {
    for kind in FaultKind::ALL {
        case.config.rates.set(kind, per_million);
    }
    case
}

/// The same case with buffers and socket windows of `bytes`.
fn cramped(mut case: FuzzCase, bytes: usize) -> FuzzCase {
    case.config.engine.input_capacity = bytes;
    case.config.engine.output_capacity = bytes;
    case.config.recv_window = bytes;
    case.config.send_window = bytes;
    case
}

fn engine_seeds() -> Vec<(String, Vec<u8>)> {
    let echo_traffic = vec![
        Connect { listener: 0 },
        Connect { listener: 0 },
        send(0, b"hello\n"),
        send(1, &[0xff; 300]),
        Read {
            client: 1,
            window: 100,
        },
        send(0, b"world"),
        Poll,
        HalfClose { client: 0 },
        Advance { millis: 7 },
        Read {
            client: 1,
            window: 4096,
        },
        Close { client: 1 },
    ];
    let echo_ends = vec![
        Connect { listener: 0 },
        Connect { listener: 0 },
        Connect { listener: 0 },
        send(0, b"a"),
        Reset { client: 0 },
        send(1, b"b"),
        Wake { client: 1 },
        Close { client: 1 },
        send(2, b"c"),
        WakeServer,
        send(2, b"after the stop"),
        Poll,
    ];
    let chat_room = vec![
        Connect { listener: 0 },
        Connect { listener: 0 },
        Connect { listener: 0 },
        send(0, b"hi all\n"),
        send(1, b"hello, "),
        send(1, b"zero\nand two\n"),
        Read {
            client: 2,
            window: 3,
        },
        send(2, b"bye\n"),
        Close { client: 2 },
        send(0, b"still here\n"),
        HalfClose { client: 1 },
    ];
    // A member that never reads while the others talk: its output fills and it is
    // dropped as a slow consumer; one that stays quiet past the idle timeout is closed.
    let mut chat_pressure = vec![Connect { listener: 0 }, Connect { listener: 0 }];
    for i in 0..40u8 {
        chat_pressure.push(send(0, &[b'a' + i % 26; 40]));
        chat_pressure.push(send(0, b"\n"));
    }
    chat_pressure.extend([
        Connect { listener: 0 },
        Advance { millis: 400 },
        send(2, b"late\n"),
        Poll,
    ]);
    let cases = [
        (
            "echo-traffic",
            ScriptHandler::Echo,
            case(1, echo_traffic.clone()),
        ),
        (
            "echo-traffic-faults",
            ScriptHandler::Echo,
            with_faults(case(2, echo_traffic.clone()), 100_000),
        ),
        (
            "echo-one-byte-buffers",
            ScriptHandler::Echo,
            cramped(case(3, echo_traffic), 1),
        ),
        (
            "echo-resets-wakes-stop",
            ScriptHandler::Echo,
            case(4, echo_ends),
        ),
        ("chat-room", ScriptHandler::Chat, case(5, chat_room.clone())),
        (
            "chat-room-faults",
            ScriptHandler::Chat,
            with_faults(case(6, chat_room), 50_000),
        ),
        (
            "chat-slow-and-idle",
            ScriptHandler::Chat,
            case(7, chat_pressure),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, handler, case)| (name.to_string(), handler.input(&case)))
        .collect()
}

/// Clients of the tcp proxy: traffic both ways, a half-close whose echo must still
/// come back, a client that leaves and one that resets, in buffers of 512 bytes and
/// of 16, with and without faults (the connect faults among them).
fn proxy_seeds() -> Vec<(String, Vec<u8>)> {
    let traffic = vec![
        Connect { listener: 0 },
        Connect { listener: 0 },
        send(0, b"hello through the proxy\n"),
        send(1, &[0xab; 700]),
        Poll,
        Read {
            client: 0,
            window: 8,
        },
        Read {
            client: 1,
            window: 4096,
        },
        HalfClose { client: 0 },
        Advance { millis: 20 },
        Read {
            client: 0,
            window: 4096,
        },
        Connect { listener: 0 },
        send(2, b"short-lived"),
        Close { client: 2 },
        Connect { listener: 0 },
        send(3, b"reset"),
        Reset { client: 3 },
        Advance { millis: 200 },
        Poll,
    ];
    let cases = [
        ("relay-traffic", case(11, traffic.clone())),
        (
            "relay-traffic-faults",
            with_faults(case(12, traffic.clone()), 100_000),
        ),
        ("relay-cramped", cramped(case(13, traffic), 16)),
    ];
    cases
        .into_iter()
        .map(|(name, case)| (name.to_string(), case.to_bytes()))
        .collect()
}

/// The redis request streams the redis seeds are made of.
struct RedisTexts {
    every_command: &'static [u8],
    pipeline: Vec<u8>,
    big_set: Vec<u8>,
    over_limit: String,
    errors: [&'static [u8]; 8],
    inline_too_big: Vec<u8>,
}

fn redis_texts() -> RedisTexts {
    let every_command: &[u8] = b"PING\r\nPING hello\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n\
        *3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nset other \"quoted value\"\r\n\
        GET key\r\nget missing\r\nEXISTS key other missing\r\nDBSIZE\r\n\
        DEL key missing\r\nCONFIG GET save\r\nconfig get *\r\nFLUSHDB\r\nDBSIZE\r\n\
        NOSUCH a b\r\nGET\r\nSET k\r\nECHO\r\nCONFIG SET a b\r\n\r\n   \r\nQUIT\r\nPING\r\n";
    let pipeline: Vec<u8> = (0..20)
        .flat_map(|i| {
            format!(
                "*3\r\n$3\r\nSET\r\n$2\r\nk{}\r\n$3\r\nv{i:02}\r\n*2\r\n$3\r\nGET\r\n$2\r\nk{}\r\n",
                i % 10,
                i % 10
            )
            .into_bytes()
        })
        .collect();
    let big_value = vec![b'x'; 1300];
    let mut big_set =
        format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", big_value.len()).into_bytes();
    big_set.extend(&big_value);
    big_set.extend(b"\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    let over_limit = format!(
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n{}\r\n",
        "y".repeat(2000)
    );
    let errors: [&'static [u8]; 8] = [
        b"*abc\r\n",
        b"*1\r\n$x\r\n",
        b"*2\r\n$3\r\nGET\r\n:1\r\n",
        b"*1\r\n$-5\r\n",
        b"*99999999\r\n",
        b"*1\r\n$99999\r\n",
        b"SET k \"unbalanced\r\n",
        b"*1\r\n$4\r\nPINGxx\r\n",
    ];
    RedisTexts {
        every_command,
        pipeline,
        big_set,
        over_limit,
        errors,
        inline_too_big: [&[b'a'; 600][..], b"\r\nPING\r\n"].concat(),
    }
}

fn redis_seeds() -> Vec<(String, Vec<u8>)> {
    let RedisTexts {
        every_command,
        pipeline,
        big_set,
        over_limit,
        errors,
        inline_too_big,
    } = redis_texts();
    let protocol_errors = one_client_each(&errors, b"PING\r\n");
    let cases = [
        (
            "redis-every-command",
            case(11, vec![Connect { listener: 0 }, send(0, every_command)]),
        ),
        (
            "redis-every-command-byte-by-byte",
            case(
                12,
                [vec![Connect { listener: 0 }], trickle(0, every_command)].concat(),
            ),
        ),
        (
            "redis-pipeline-two-clients-faults",
            with_faults(
                case(
                    13,
                    vec![
                        Connect { listener: 0 },
                        Connect { listener: 0 },
                        send(0, &pipeline[..333]),
                        send(1, &pipeline),
                        send(0, &pipeline[333..]),
                        Read {
                            client: 0,
                            window: 7,
                        },
                    ],
                ),
                50_000,
            ),
        ),
        (
            "redis-big-value-small-output",
            cramped(
                case(14, vec![Connect { listener: 0 }, send(0, &big_set)]),
                16,
            ),
        ),
        (
            "redis-request-over-limit",
            case(
                15,
                vec![
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    send(0, over_limit.as_bytes()),
                    send(1, b"SET k v\r\nGET k\r\n"),
                ],
            ),
        ),
        ("redis-protocol-errors", case(16, protocol_errors)),
        (
            "redis-inline-too-big",
            case(17, vec![Connect { listener: 0 }, send(0, &inline_too_big)]),
        ),
        (
            // Cross-protocol scripting: an HTTP request cut off at its `POST` (its body's
            // SET never runs), one at a `Host:` read with requests before it (which run
            // unanswered), and a client that checks.
            "redis-http-request",
            case(
                19,
                vec![
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    send(0, b"PING\r\n"),
                    send(
                        0,
                        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\nSET k pwned\r\n",
                    ),
                    send(
                        1,
                        b"SET a 1\r\nGET / HTTP/1.1\r\n*2\r\n$5\r\nhOsT:\r\n$1\r\nx\r\nSET b 2\r\n",
                    ),
                    Advance { millis: 1 },
                    send(2, b"GET k\r\nGET a\r\nGET b\r\nDBSIZE\r\n"),
                ],
            ),
        ),
        (
            // The memory limit (`SIM_MAXMEMORY`, 600): writes refused once over it,
            // arity checked first, DEL and FLUSHDB making room.
            "redis-maxmemory",
            case(
                20,
                vec![
                    Connect { listener: 0 },
                    send(
                        0,
                        b"SET a 1\r\nSET b 1\r\nSET c 1\r\nSET d 1\r\nSET e 1\r\nSET f 1 NX\r\n\
                          SET f\r\nGET a\r\nCONFIG GET maxmemory\r\nDEL a b\r\nSET f 1\r\n\
                          FLUSHDB\r\nSET g 1\r\nDBSIZE\r\n",
                    ),
                ],
            ),
        ),
        (
            "redis-idle-timeout-and-shutdown",
            case(
                18,
                vec![
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    send(0, b"SET a 1\r\n"),
                    Advance { millis: 100 },
                    send(1, b"GET a\r\n"),
                    send(2, b"SHUTDOWN\r\nPING\r\n"),
                    send(1, b"PING\r\n"),
                ],
            ),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, case)| (name.to_string(), case.to_bytes()))
        .collect()
}

fn redis_parse_seeds() -> Vec<(String, Vec<u8>)> {
    let texts = redis_texts();
    let quoting: &[u8] = b"SET \"a b\" 'c d'\r\nECHO \"\\x41\\n\\t\\\"q\\\"\"\r\n\
        ECHO 'it\\'s'\r\nECHO \"\"\r\nPING a\x00b\r\nECHO \"x\"y\r\n";
    let seeds = [
        ("every-command", texts.every_command.to_vec()),
        ("pipeline", texts.pipeline),
        ("big-value", texts.big_set),
        ("over-limit", texts.over_limit.into_bytes()),
        ("inline-too-big", texts.inline_too_big),
        ("inline-quoting", quoting.to_vec()),
        (
            "empty-and-negative-counts",
            b"*0\r\n*-1\r\n*1\r\n$0\r\n\r\n".to_vec(),
        ),
    ];
    let errors = texts.errors.iter().enumerate();
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .chain(errors.map(|(i, error)| (format!("error-{i}"), error.to_vec())))
        .collect()
}

fn http_seeds() -> Vec<(String, Vec<u8>)> {
    let get: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let chunked: &[u8] = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n";
    let pipelined = [
        get,
        b"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: fuzz\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
        chunked,
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"HEAD / HTTP/1.2\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        get,
    ]
    .concat();
    let refusals: [&[u8]; 12] = [
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT host:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    ];
    let mut refused = case(25, one_client_each(&refusals, get));
    refused.config.engine.max_connections = refusals.len();
    let big_head = [
        &b"GET / HTTP/1.1\r\nX-Long: "[..],
        &[b'h'; 300],
        b"\r\n\r\n",
    ]
    .concat();
    // A body longer than the input buffer, in pieces.
    let long_body = [
        &b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 900\r\n\r\n"[..],
        &[b'b'; 900],
        get,
    ]
    .concat();
    // More responses than the output buffer holds, to a client that does not read.
    let many = get.repeat(40);
    // Four slots: the fourth client takes the last one, and the longest idle is closed.
    let mut reclaim = case(
        29,
        vec![
            Connect { listener: 0 },
            send(0, get),
            Connect { listener: 0 },
            send(1, get),
            Connect { listener: 0 },
            Advance { millis: 5 },
            Connect { listener: 0 },
            send(3, get),
            Read {
                client: 0,
                window: 4096,
            },
        ],
    );
    reclaim.config.engine.max_connections = 4;
    let cases = [
        (
            "http-keep-alive-and-1.0",
            case(
                21,
                vec![
                    Connect { listener: 0 },
                    send(0, get),
                    send(0, get),
                    Connect { listener: 0 },
                    send(1, b"GET / HTTP/1.0\r\n\r\n"),
                    Connect { listener: 0 },
                    send(2, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                    send(2, get),
                ],
            ),
        ),
        (
            "http-pipelined",
            case(22, vec![Connect { listener: 0 }, send(0, &pipelined)]),
        ),
        (
            "http-pipelined-byte-by-byte",
            case(
                23,
                [vec![Connect { listener: 0 }], trickle(0, &pipelined)].concat(),
            ),
        ),
        (
            "http-pipelined-faults",
            with_faults(
                case(
                    24,
                    vec![
                        Connect { listener: 0 },
                        Connect { listener: 0 },
                        send(0, &pipelined),
                        send(1, &pipelined[..50]),
                        send(1, &pipelined[50..]),
                    ],
                ),
                50_000,
            ),
        ),
        ("http-refused-requests", refused),
        (
            "http-headers-too-large",
            case(26, vec![Connect { listener: 0 }, send(0, &big_head)]),
        ),
        (
            "http-slow-headers",
            case(
                27,
                vec![
                    Connect { listener: 0 },
                    send(0, b"GET / HTTP/1.1\r\nHo"),
                    Advance { millis: 30 },
                    send(0, b"st: x\r\n"),
                    Advance { millis: 40 },
                    Connect { listener: 0 },
                    Advance { millis: 200 },
                    send(1, get),
                ],
            ),
        ),
        (
            "http-long-body-streams",
            case(
                28,
                vec![
                    Connect { listener: 0 },
                    send(0, &long_body[..120]),
                    send(0, &long_body[120..600]),
                    Advance { millis: 20 },
                    send(0, &long_body[600..]),
                ],
            ),
        ),
        ("http-idle-closed-to-make-room", reclaim),
        (
            "http-idle-and-slow-bodies-time-out",
            case(
                30,
                vec![
                    Connect { listener: 0 },
                    Connect { listener: 0 },
                    send(1, get),
                    Connect { listener: 0 },
                    send(
                        2,
                        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
                    ),
                    Advance { millis: 0 },
                    Advance { millis: 50 },
                    Advance { millis: 50 },
                    Advance { millis: 50 },
                ],
            ),
        ),
        (
            "http-client-that-does-not-read",
            case(
                31,
                vec![
                    Connect { listener: 0 },
                    send(0, &many),
                    Advance { millis: 20 },
                    Read {
                        client: 0,
                        window: 100,
                    },
                    Advance { millis: 50 },
                    Advance { millis: 50 },
                    Advance { millis: 50 },
                ],
            ),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, case)| (name.to_string(), case.to_bytes()))
        .collect()
}

fn addr_seeds() -> Vec<(String, Vec<u8>)> {
    let texts: [(&str, &[u8]); 16] = [
        ("tcp", b"tcp://127.0.0.1:5000"),
        ("tcp4", b"tcp4://0.0.0.0:6380"),
        ("tcp6", b"tcp6://[::1]:8080"),
        ("tcp6-scoped", b"tcp6://[fe80::1%2]:80"),
        ("bare", b"localhost:80"),
        ("bare-port", b":9999"),
        ("unix", b"unix:///tmp/evio.sock"),
        ("unix-relative", b"unix://socket"),
        ("net-tcp", b"tcp-net://example.com:443"),
        ("net-unix", b"unix-net://sock?reuseport=true"),
        ("reuseport", b"tcp://[::]:80?reuseport=true"),
        ("bad-port", b"tcp://1.2.3.4:99999"),
        ("bad-scheme", b"udp://1.2.3.4:53"),
        ("bad-bracket", b"tcp6://[::1:80"),
        ("bad-query", b"tcp://h:1?reuseport=maybe&x"),
        ("not-utf8", b"tcp://\xff\xfe:1"),
    ];
    texts
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.to_vec()))
        .collect()
}

/// Every hand-made seed is committed as its script makes it, and passes its target.
/// Clients behind TLS: `tls_script`'s first byte picks echo (even) or http (odd).
fn tls_seeds() -> Vec<(String, Vec<u8>)> {
    // Reads let the handshake go on: the client answers the server's flight.
    let reads = |client: u16, n: usize| {
        (0..n).map(move |_| Read {
            client,
            window: u16::MAX,
        })
    };
    let mut echo_traffic = vec![Connect { listener: 0 }, Connect { listener: 0 }];
    echo_traffic.extend(reads(0, 8).chain(reads(1, 8)));
    echo_traffic.extend([send(0, b"hello over tls\n"), send(1, &[0xa5; 3000]), Poll]);
    echo_traffic.extend(reads(0, 8).chain(reads(1, 80)));
    echo_traffic.extend([HalfClose { client: 0 }, Close { client: 1 }]);
    // Through windows of one byte: every record and handshake message cut at every
    // byte.
    let mut echo_trickle = vec![Connect { listener: 0 }];
    echo_trickle.extend(reads(0, 600));
    echo_trickle.push(send(0, &[b'z'; 100]));
    echo_trickle.extend(reads(0, 300));
    echo_trickle.push(HalfClose { client: 0 });
    // Clients that leave during their handshake, or send before it is over.
    let echo_handshake_ends = vec![
        Connect { listener: 0 },
        Connect { listener: 0 },
        Connect { listener: 0 },
        Close { client: 0 },
        Reset { client: 1 },
        send(2, b"early"),
        HalfClose { client: 2 },
        Poll,
        Advance { millis: 20 },
    ];
    let mut http_requests = vec![Connect { listener: 0 }];
    http_requests.extend(reads(0, 4));
    http_requests.extend([
        send(
            0,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n",
        ),
        send(
            0,
            b"\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        ),
        Poll,
    ]);
    http_requests.extend(reads(0, 4));
    http_requests.push(send(0, b"BREW / HTCPCP/1.0\r\n\r\n"));
    let cases = [
        ("echo-traffic", 0u8, case(31, echo_traffic.clone())),
        (
            "echo-traffic-faults",
            0,
            with_faults(case(32, echo_traffic.clone()), 20_000),
        ),
        (
            "echo-one-byte-windows",
            0,
            cramped(case(33, echo_trickle), 1),
        ),
        ("echo-handshake-ends", 0, case(34, echo_handshake_ends)),
        ("http-requests", 1, case(35, http_requests.clone())),
        (
            "http-requests-faults",
            1,
            with_faults(case(36, http_requests), 20_000),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, handler, case)| {
            let mut input = vec![handler];
            input.extend(case.to_bytes());
            (name.to_string(), input)
        })
        .collect()
}

#[test]
fn the_hand_made_seeds_are_committed_and_pass() {
    let all = [
        ("engine_script", engine_seeds()),
        ("proxy_script", proxy_seeds()),
        ("redis_handler", redis_seeds()),
        ("redis_parse", redis_parse_seeds()),
        ("http_handler", http_seeds()),
        ("addr_parse", addr_seeds()),
        ("tls_script", tls_seeds()),
    ];
    let mut problems = Vec::new();
    for (target, seeds) in all {
        let check = TARGETS.iter().find(|(t, _)| *t == target).unwrap().1;
        for (name, input) in seeds {
            if let Err(e) = keep_seed(target, &name, &input) {
                problems.push(e.to_string());
            }
            if let Err(e) = check(&input) {
                problems.push(format!("seed {target}/{name}: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Every committed input of every target (the seeds, and whatever a fuzzer left in
/// `fuzz/artifacts/`) passes the target's check.
#[test]
fn every_committed_input_replays() {
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let inputs = committed_inputs(target).unwrap();
        assert!(!inputs.is_empty(), "{target} has no committed seeds");
        for (path, input) in inputs {
            if let Err(e) = check(&input) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
