//! The control: with [`CountingAllocator`] installed, the count sees the allocations made
//! on its thread, and none of those made on another thread meanwhile.

use std::hint::{black_box, spin_loop};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use evio_test_support::{CountingAllocator, allocations};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn the_counter_sees_allocations_on_its_thread_and_not_on_others() {
    let before = allocations();
    let boxed = black_box(Box::new(black_box(7u64)));
    assert_eq!(allocations() - before, 1, "an allocation is counted");
    drop(boxed);
    assert_eq!(allocations() - before, 1, "a free is not an allocation");
    let mut v = black_box(Vec::<u8>::with_capacity(1));
    v.extend_from_slice(black_box(&[1; 64]));
    assert_eq!(allocations() - before, 3, "a reallocation is counted");

    // Another thread allocates all the time while this one waits for 1,000 of them.
    let made = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (made, stop) = (made.clone(), stop.clone());
        std::thread::spawn(move || {
            let before = allocations();
            while !stop.load(Ordering::SeqCst) {
                black_box(vec![0u8; 64]);
                made.fetch_add(1, Ordering::SeqCst);
            }
            (allocations() - before, made.load(Ordering::SeqCst))
        })
    };
    let before = allocations();
    while made.load(Ordering::SeqCst) < 1000 {
        spin_loop();
    }
    assert_eq!(
        allocations(),
        before,
        "another thread's allocations are its own"
    );
    stop.store(true, Ordering::SeqCst);
    let (counted, made) = other.join().unwrap();
    assert_eq!(counted, made, "and counted there");
}
