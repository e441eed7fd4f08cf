//! Names the target families the driver's code is gated on, once, so the source says
//! `cfg(evio_epoll)` instead of repeating the list of operating systems.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for name in [
        "evio_epoll",
        "evio_kqueue",
        "evio_kqueue_user",
        "evio_uring",
    ] {
        println!("cargo::rustc-check-cfg=cfg({name})");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let apple = std::env::var("CARGO_CFG_TARGET_VENDOR").is_ok_and(|v| v == "apple");
    let epoll = matches!(os.as_str(), "linux" | "android");
    // A kqueue event carries its token in a pointer-sized udata, and the poller's tokens
    // are 64-bit (a connection id, the high bit for listeners): 32-bit targets (watchOS
    // arm64_32, i386/armv7 BSDs) would truncate them, so they use poll(2).
    let wide = std::env::var("CARGO_CFG_TARGET_POINTER_WIDTH").is_ok_and(|w| w == "64");
    let kqueue =
        wide && (apple || matches!(os.as_str(), "freebsd" | "netbsd" | "openbsd" | "dragonfly"));
    // EVFILT_USER exists on these; the other BSDs wake the loop through a pipe.
    let kqueue_user = kqueue && (apple || matches!(os.as_str(), "freebsd" | "dragonfly"));
    let set = |on: bool, name: &str| {
        if on {
            println!("cargo::rustc-cfg={name}");
        }
    };
    // Every other unix (and a target forced with `--cfg evio_force_poll`) is served by
    // `sys/poll.rs` alone, which every build compiles.
    set(epoll, "evio_epoll");
    set(kqueue, "evio_kqueue");
    set(kqueue_user, "evio_kqueue_user");
    // Batched sends through io_uring (`sys/uring.rs`) where the io-uring crate has
    // prebuilt bindings; the same list gates the dependency in Cargo.toml. Elsewhere
    // (32-bit Linux among others) a batch is one send(2) per entry.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let uring_arch = matches!(
        arch.as_str(),
        "x86_64" | "aarch64" | "riscv64" | "loongarch64" | "powerpc64"
    );
    set(epoll && uring_arch, "evio_uring");
}
