//! A PSK-only DTLS 1.2 client: everything a device needs from m2msec, and nothing of the
//! server. Handshake (TLS_PSK_WITH_AES_128_CCM_8 or _CCM), one 1 KiB request, its reply,
//! close_notify, with retransmission timers; the radio and clock are opaque (`rt`), so the
//! compiler keeps the whole client path.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../rt.rs"]
mod rt;

use alloc::sync::Arc;

use m2msec::{
    ClientConfig, ClientPsk, Error, Event, Instant, Now, Output, Psk, Session, Transport,
};

const IDENTITY: &[u8] = b"device-0001";

fn now() -> Now {
    Now {
        mono: Instant(rt::micros()),
        ..Now::default()
    }
}

fn run(key: &[u8], seed: [u8; 32]) -> Result<bool, Error> {
    let psk = ClientPsk::new(IDENTITY, Psk::new(key)?)?;
    let config = Arc::new(ClientConfig::builder(psk).build()?);
    let mut session = Session::client(config, Transport::dtls(), None, now(), seed)?;
    let mut out = [0u8; 1500];
    let mut rx = [0u8; 1500];
    let request = [0x5a_u8; 1024];
    let mut echoed = 0usize;
    loop {
        let deadline = loop {
            match session.poll_output(&mut out) {
                Output::Transmit(d) => rt::radio_tx(d),
                Output::Event(Event::Connected(_)) => {
                    session.send(now(), &request)?;
                }
                Output::Event(Event::AppData(d)) => {
                    echoed += d.len();
                    if echoed >= request.len() {
                        session.close(now())?;
                    }
                }
                Output::Event(Event::PeerClosed) => return Ok(echoed == request.len()),
                Output::Wait(deadline) => break deadline,
                _ => return Ok(false),
            }
        };
        let n = rt::radio_rx(&mut rx);
        if n == 0 {
            if deadline.is_some_and(|d| now().mono >= d) {
                session.handle_timeout(now())?;
            }
            continue;
        }
        let mut off = 0;
        while off < n {
            off += session.handle_input(now(), &rx[off..n])?;
            while let Output::Transmit(d) = session.poll_output(&mut out) {
                rt::radio_tx(d);
            }
        }
    }
}

/// The entry point (the linker's `--entry` on the embedded target, libc's `main` on a host).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut key = [0u8; 16];
    let mut seed = [0u8; 32];
    rt::radio_rx(&mut key);
    rt::radio_rx(&mut seed);
    match run(&key, seed) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(_) => 2,
    }
}
