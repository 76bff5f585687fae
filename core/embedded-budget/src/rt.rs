//! The runtime both size binaries share, so that it cancels out of the difference: a bump
//! allocator over a static arena (freeing only the most recent block), a panic handler that
//! parks, and the opaque "radio" and clock the client talks through. Nothing here is m2msec.

#![allow(dead_code)] // each binary uses a part

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Heap arena (in .bss, the same in both binaries).
const ARENA: usize = 48 * 1024;

pub struct Bump {
    arena: UnsafeCell<[u8; ARENA]>,
    next: AtomicUsize,
}

// One thread of execution: the arena is only handed out through `next`.
unsafe impl Sync for Bump {}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.get() as usize;
        let next = self.next.load(Ordering::Relaxed);
        let start = (base + next + layout.align() - 1) & !(layout.align() - 1);
        let end = start - base + layout.size();
        if end > ARENA {
            return core::ptr::null_mut();
        }
        self.next.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the most recent block is given back (enough for a stack-like use).
        let base = self.arena.get() as usize;
        if ptr as usize + layout.size() == base + self.next.load(Ordering::Relaxed) {
            self.next.store(ptr as usize - base, Ordering::Relaxed);
        }
    }
}

#[global_allocator]
static HEAP: Bump = Bump {
    arena: UnsafeCell::new([0; ARENA]),
    next: AtomicUsize::new(0),
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Sends a datagram: the compiler must assume the bytes are used.
pub fn radio_tx(datagram: &[u8]) {
    black_box(datagram);
}

/// Receives a datagram into `buf`: the compiler must assume any bytes and any length.
pub fn radio_rx(buf: &mut [u8]) -> usize {
    black_box(&mut *buf);
    black_box(0usize).min(buf.len())
}

/// The monotonic clock in microseconds, opaque to the compiler.
pub fn micros() -> u64 {
    black_box(0u64)
}
