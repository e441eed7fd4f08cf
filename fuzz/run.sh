#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after another, with
# AddressSanitizer and debug assertions, then prints per target: executions, executions
# per second, coverage (cov/ft, libFuzzer's edge and feature counts), corpus size, and
# whether it crashed.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# The committed seeds (seeds/<target>/) are read as a second corpus directory and never
# written; what a run finds new goes to corpus/<target>/ (kept between runs, not
# committed), crashes and timeouts to artifacts/<target>/. A crash's input is the
# regression test once fixed: copy it to seeds/<target>/ (tests/fuzz_corpus.rs in
# evio-handlers replays both directories on stable). Logs are in logs/<target>.log.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Exits non-zero if any target crashed, hung or failed to build.
set -euo pipefail
cd "$(dirname "$0")"

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

mkdir -p logs
# Debug assertions on: the engine's debug_assert! invariants are checked too.
flags=(--sanitizer address --debug-assertions)
cargo +nightly fuzz build "${flags[@]}" >logs/build.log 2>&1 ||
    { tail -n 30 logs/build.log >&2; echo "fuzz build failed" >&2; exit 1; }

failed=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target" "seeds/$target"
    log="logs/$target.log"
    echo "=== $target: ${seconds} s ===" >&2
    # -timeout: one input taking over 2 s is a crash (an input runs in milliseconds,
    # 7 ms on average for the slowest target, engine_script): an algorithmic blow-up a
    # peer can trigger, such as the exponential glob matcher CONFIG GET once had (63
    # bytes, 5-11 s in a release build), is a finding, not a slow input;
    # -rss_limit_mb: a leak or an
    # unbounded buffer is a failure, not a slow machine; -max_len: inputs of up to
    # 4 KiB (a simulator script of a few hundred events): left to itself, libFuzzer
    # let engine_script's inputs grow to 14 KB and ran a third as many per second.
    # tls_script runs rustls on both sides of every connection and is about twenty
    # times slower per input: its slowest input found so far (a 1-byte send window,
    # 75,685 writes in 108 events; 70 ms in a release build) takes 1.2-1.7 s under
    # the sanitizer here, so 2 s would fail it on a loaded machine. 5 s still fails
    # a blow-up.
    timeout=2
    [[ $target == tls_script ]] && timeout=5
    status=ok
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
        status=FAILED
        failed=1
        grep -E "^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)" \
            "$log" | head -n 8 >&2 || true
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
    summary+=("$(printf '%-14s %8s %12s %8s %6s %7s %14s' "$target" "$status" \
        "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done

printf '\n%-14s %8s %12s %8s %6s %7s %14s\n' target status executions exec/s cov ft corpus
printf '%s\n' "${summary[@]}"
exit "$failed"
