//! RAM of the PSK-only DTLS client, on the host: `size_of::<Session>()`, the client's heap peak
//! over a full DTLS 1.2 PSK handshake (with the HelloVerifyRequest cookie exchange) followed by
//! a 1 KiB request, its 1 KiB echo and close_notify, and an estimate of the client's stack.
//!
//! The server runs in the same thread, its calls interleaved with the client's; the counting
//! allocator charges an allocation or a free to the client only while a client call runs (the
//! method of `io-std/benches/throughput.rs`: each side's blocks are freed by that side). The
//! stack is measured by painting the 64 KiB below the caller's frame before each client call
//! and finding the deepest overwritten word after it (x86_64 frames; a frame's bytes that are
//! never written are not seen, so this is a lower bound for this target and optimisation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use m2msec::dtls::{CookieListener, ListenerDecision};
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Event, Now, Output, Psk, PskTable, ServerConfig, Session,
    Transport,
};

struct Counting;

static CLIENT: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn grow(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if CLIENT.load(Ordering::Relaxed) {
            grow(layout.size());
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if CLIENT.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if CLIENT.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PAINT: usize = 64 * 1024;
const MARGIN: usize = 512;
const PATTERN: u64 = 0x5a5a_a5a5_5a5a_a5a5;

thread_local! {
    static STACK_MAX: Cell<usize> = const { Cell::new(0) };
}

#[inline(always)]
fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer register only.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    sp
}

#[inline(never)]
fn paint(base: usize) {
    let mut a = base - PAINT;
    while a < base - MARGIN {
        // SAFETY: the thread runs on an 8 MiB stack; these words are below the live frames.
        unsafe { core::ptr::write_volatile(a as *mut u64, PATTERN) };
        a += 8;
    }
}

#[inline(never)]
fn deepest(base: usize) -> usize {
    let mut a = base - PAINT;
    while a < base - MARGIN {
        // SAFETY: as in `paint`.
        if unsafe { core::ptr::read_volatile(a as *const u64) } != PATTERN {
            return base - a;
        }
        a += 8;
    }
    0
}

/// Runs one client call: its heap is charged to the client and its stack depth recorded.
#[inline(never)]
fn client<R>(f: impl FnOnce() -> R) -> R {
    let base = sp() & !7;
    paint(base);
    CLIENT.store(true, Ordering::Relaxed);
    let r = black_box(f());
    CLIENT.store(false, Ordering::Relaxed);
    let used = deepest(base);
    STACK_MAX.with(|m| m.set(m.get().max(used)));
    r
}

const ID: &[u8] = b"device-0001";
const KEY: [u8; 16] = [0x0b; 16];
const PEER: &[u8] = b"192.0.2.1:5684";

/// Drains `s`: datagrams to `out`, application bytes to `app`; events returned.
fn drain(
    s: &mut Session,
    wire: &mut [u8],
    out: &mut Vec<Vec<u8>>,
    app: &mut Vec<u8>,
) -> Vec<&'static str> {
    let mut events = Vec::new();
    loop {
        match s.poll_output(wire) {
            Output::Transmit(d) => out.push(d.to_vec()),
            Output::Event(Event::AppData(d)) => app.extend_from_slice(d),
            Output::Event(Event::Connected(_)) => events.push("connected"),
            Output::Event(Event::PeerClosed) => events.push("closed"),
            Output::Event(_) => events.push("other"),
            Output::Wait(_) => return events,
            other => panic!("unexpected {other:?}"),
        }
    }
}

struct Figures {
    heap_peak: usize,
    heap_live_connected: usize,
    allocs: usize,
    stack: usize,
}

fn exchange(suite: CipherSuite) -> Figures {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    ALLOCS.store(0, Ordering::Relaxed);
    STACK_MAX.with(|m| m.set(0));

    // The configuration is the client's too (built once, shared by `Arc`).
    let cc = client(|| {
        Arc::new(
            ClientConfig::builder(ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap())
                .suites(&[suite])
                .build()
                .unwrap(),
        )
    });
    let mut table = PskTable::new();
    table.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
    let sc = Arc::new(ServerConfig::builder(Box::new(table)).build().unwrap());
    let listener = CookieListener::new([7; 32]);

    let mut wire = vec![0u8; 1500];
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let (mut capp, mut sapp) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    let mut c =
        client(|| Session::client(cc, Transport::dtls(), None, Now::default(), [1; 32]).unwrap());
    client(|| drain(&mut c, &mut wire, &mut c2s, &mut capp));
    let mut server: Option<Session> = None;
    let mut live_connected = 0;
    let mut request_sent = false;
    let mut done = false;
    for _round in 0..16 {
        for d in c2s.drain(..) {
            if server.is_none() {
                match listener.handle_datagram(PEER, &d) {
                    ListenerDecision::SendHelloVerify(hvr) => {
                        s2c.push(hvr);
                        continue;
                    }
                    ListenerDecision::Accept => {
                        server = Some(
                            Session::server(sc.clone(), Transport::dtls(), Now::default(), [2; 32])
                                .unwrap(),
                        );
                    }
                    other => panic!("listener: {other:?}"),
                }
            }
            let s = server.as_mut().unwrap();
            assert_eq!(s.handle_input(Now::default(), &d).unwrap(), d.len());
            drain(s, &mut wire, &mut s2c, &mut sapp);
            // The server echoes what it received.
            if !sapp.is_empty() {
                let echo = std::mem::take(&mut sapp);
                s.send(Now::default(), &echo).unwrap();
                drain(s, &mut wire, &mut s2c, &mut sapp);
            }
        }
        for d in s2c.drain(..) {
            let n = client(|| c.handle_input(Now::default(), &d).unwrap());
            assert_eq!(n, d.len());
            let ev = client(|| drain(&mut c, &mut wire, &mut c2s, &mut capp));
            if ev.contains(&"closed") {
                done = true;
            }
        }
        if c.is_connected() && !request_sent {
            live_connected = LIVE.load(Ordering::Relaxed);
            let request = [0x5a_u8; 1024];
            assert_eq!(client(|| c.send(Now::default(), &request).unwrap()), 1024);
            client(|| drain(&mut c, &mut wire, &mut c2s, &mut capp));
            request_sent = true;
        }
        if capp.len() >= 1024 && !c.is_closed() {
            assert_eq!(capp[..1024], [0x5a_u8; 1024]);
            client(|| c.close(Now::default()).unwrap());
            client(|| drain(&mut c, &mut wire, &mut c2s, &mut capp));
        }
        if done || (c.is_closed() && c2s.is_empty() && s2c.is_empty()) {
            break;
        }
    }
    assert!(capp.len() >= 1024, "no echo");
    client(|| drop(c));
    Figures {
        heap_peak: PEAK.load(Ordering::Relaxed),
        heap_live_connected: live_connected,
        allocs: ALLOCS.load(Ordering::Relaxed),
        stack: STACK_MAX.with(Cell::get),
    }
}

fn main() {
    println!(
        "size_of::<Session>() = {} bytes (x86_64; a 32-bit target is smaller)",
        std::mem::size_of::<Session>()
    );
    for suite in [CipherSuite::PskAes128Ccm8, CipherSuite::PskAes128Ccm] {
        let f = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || exchange(suite))
            .unwrap()
            .join()
            .unwrap();
        println!(
            "{suite:?}: client heap peak {} bytes, live when connected {} bytes, {} allocations; \
             client stack (painted, x86_64) {} bytes",
            f.heap_peak, f.heap_live_connected, f.allocs, f.stack
        );
    }
}
