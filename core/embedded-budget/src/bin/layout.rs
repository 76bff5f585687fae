//! Type sizes on the build target, read back with `nm -S` (each symbol is as large as its type):
//! not part of the size figures.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../rt.rs"]
mod rt;

use core::mem::size_of;

use m2msec::{ClientConfig, Session};

/// `size_of::<Session>()` bytes.
#[no_mangle]
pub static SIZE_OF_SESSION: [u8; size_of::<Session>()] = [0; size_of::<Session>()];
/// `size_of::<ClientConfig>()` bytes (it lives in an `Arc` on the heap).
#[no_mangle]
pub static SIZE_OF_CLIENT_CONFIG: [u8; size_of::<ClientConfig>()] = [0; size_of::<ClientConfig>()];

/// The entry point: keeps both symbols.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let a = core::hint::black_box(&SIZE_OF_SESSION);
    let b = core::hint::black_box(&SIZE_OF_CLIENT_CONFIG);
    i32::from(a[0] == b[0]) + i32::from(rt::radio_rx(&mut [0u8; 4]) == 0)
}
