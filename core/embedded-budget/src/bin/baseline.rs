//! The baseline of the size measurement: the same runtime (allocator, panic handler, radio,
//! clock) and a loop of the same shape as `psk_client`, without m2msec.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../rt.rs"]
mod rt;

use alloc::vec::Vec;

/// The entry point (the linker's `--entry` on the embedded target, libc's `main` on a host).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut rx = [0u8; 1500];
    let mut held: Vec<u8> = Vec::with_capacity(core::hint::black_box(64));
    loop {
        let n = rt::radio_rx(&mut rx);
        if n == 0 {
            return i32::from(rt::micros() > 1000);
        }
        held.extend_from_slice(&rx[..n]);
        rt::radio_tx(&held);
    }
}
