//! A global allocator that counts the heap bytes live in the whole test process, for tests
//! that measure memory (`utxo_memory`, `peer_memory`). Include it with `mod counting_alloc;`
//! in such a test only: it installs itself as the process's allocator. The counter is
//! process-wide, so a test file using it runs its measurements in one test.
#![allow(unsafe_code)] // a counting allocator is unsafe by nature

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap bytes live in the process now.
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}
