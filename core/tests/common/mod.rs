//! Helpers shared by the integration tests: configurations and an in-memory pair driver.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Error, Event, Now, Output, Psk, PskTable, ServerConfig,
    Session, Transport,
};

pub const ID: &[u8] = b"Client_identity";
pub const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

pub fn client_cfg(key: &[u8], suites: &[CipherSuite]) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(ID, Psk::new(key).unwrap()).unwrap();
    Arc::new(ClientConfig::builder(psk).suites(suites).build().unwrap())
}

pub fn server_cfg(suites: &[CipherSuite], hint: Option<&[u8]>) -> Arc<ServerConfig> {
    let mut t = PskTable::new();
    t.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
    Arc::new(
        ServerConfig::builder(Box::new(t))
            .suites(suites)
            .identity_hint(hint)
            .build()
            .unwrap(),
    )
}

/// Everything one side produced in one drain.
#[derive(Default, Debug)]
pub struct Drained {
    pub bytes: Vec<u8>,
    pub events: Vec<String>,
    pub data: Vec<u8>,
    pub connected: Option<m2msec::SessionInfo>,
    pub psk_needed: Option<Vec<u8>>,
    pub leftover: Vec<u8>,
}

pub fn drain(s: &mut Session) -> Drained {
    let mut d = Drained::default();
    let mut buf = vec![0u8; 1000]; // small on purpose: transmits are split
    loop {
        match s.poll_output(&mut buf) {
            Output::Transmit(b) => d.bytes.extend_from_slice(b),
            Output::Event(Event::AppData(b)) => d.data.extend_from_slice(b),
            Output::Event(Event::Connected(info)) => {
                d.events.push("connected".into());
                d.connected = Some(info);
            }
            Output::Event(Event::PskNeeded { identity, .. }) => d.psk_needed = Some(identity),
            Output::Event(e) => d.events.push(format!("{e:?}")),
            Output::Wait(_) => return d,
            o => panic!("unexpected {o:?}"),
        }
    }
}

/// Feeds all of `bytes` (in chunks of `chunk`), draining as required; returns what came out.
pub fn feed(s: &mut Session, bytes: &[u8], chunk: usize) -> Result<Drained, Error> {
    let mut out = Drained::default();
    for c in bytes.chunks(chunk.max(1)) {
        let mut rest = c;
        loop {
            let n = s.handle_input(Now::default(), rest)?;
            rest = &rest[n..];
            let d = drain(s);
            out.bytes.extend(d.bytes);
            out.events.extend(d.events);
            out.data.extend(d.data);
            out.connected = out.connected.or(d.connected);
            out.psk_needed = out.psk_needed.or(d.psk_needed);
            if rest.is_empty() || (n == 0 && s.is_suspended()) {
                out.leftover = rest.to_vec();
                break;
            }
        }
    }
    Ok(out)
}

pub struct Pair {
    pub client: Session,
    pub server: Session,
}

#[allow(clippy::result_large_err)]
pub fn handshake(
    c: Arc<ClientConfig>,
    s: Arc<ServerConfig>,
    sni: Option<&str>,
    chunk: usize,
) -> Result<(Pair, Drained, Drained), (Error, Pair)> {
    let mut client = Session::client(c, Transport::Tls, sni, Now::default(), [1; 32]).unwrap();
    let mut server = Session::server(s, Transport::Tls, Now::default(), [2; 32]).unwrap();
    let mut to_server = drain(&mut client).bytes;
    let mut c_info = Drained::default();
    let mut s_info = Drained::default();
    for _ in 0..10 {
        let r = feed(&mut server, &to_server, chunk);
        let d = match r {
            Ok(d) => d,
            Err(e) => return Err((e, Pair { client, server })),
        };
        if d.connected.is_some() {
            s_info.connected = d.connected.clone();
        }
        let to_client = d.bytes;
        let r = feed(&mut client, &to_client, chunk);
        let d = match r {
            Ok(d) => d,
            Err(e) => return Err((e, Pair { client, server })),
        };
        if d.connected.is_some() {
            c_info.connected = d.connected.clone();
        }
        to_server = d.bytes;
        if client.is_connected() && server.is_connected() {
            return Ok((Pair { client, server }, c_info, s_info));
        }
    }
    panic!("no progress");
}
