//! The RFC 5705 exporter with and without context, against OpenSSL's libssl over a real TCP
//! connection (the `openssl` command line cannot pass a context). Both directions, both suites.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use m2msec::config::PskTable;
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk, ServerConfig};
use openssl::ssl::{SslContext, SslMethod, SslOptions, SslStream, SslVersion};

const ID: &[u8] = b"Client_identity";
const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const LABEL: &str = "EXPORTER-oneM2M-Bootstrap";
const CONTEXTS: [Option<&[u8]>; 3] = [None, Some(b""), Some(b"oneM2M context \x00\x01")];

fn openssl_ctx(server: bool, suite: CipherSuite) -> SslContext {
    let mut b = SslContext::builder(SslMethod::tls()).unwrap();
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_options(SslOptions::NO_TICKET);
    let cipher = match suite {
        CipherSuite::PskAes128Ccm => "PSK-AES128-CCM:@SECLEVEL=0",
        _ => "PSK-AES128-CCM8:@SECLEVEL=0",
    };
    b.set_cipher_list(cipher).unwrap();
    if server {
        b.set_psk_server_callback(|_, identity, psk| {
            if identity != Some(ID) {
                return Ok(0);
            }
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
    } else {
        b.set_psk_client_callback(|_, _hint, identity, psk| {
            identity[..ID.len()].copy_from_slice(ID);
            identity[ID.len()] = 0;
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
    }
    b.build()
}

fn openssl_exports(s: &SslStream<TcpStream>) -> Vec<Vec<u8>> {
    CONTEXTS
        .iter()
        .map(|c| {
            let mut out = vec![0u8; 48];
            s.ssl().export_keying_material(&mut out, LABEL, *c).unwrap();
            out
        })
        .collect()
}

fn our_exports(s: &m2msec_std::TlsStream<TcpStream>) -> Vec<Vec<u8>> {
    CONTEXTS
        .iter()
        .map(|c| {
            let mut out = vec![0u8; 48];
            s.export_keying_material(&mut out, LABEL.as_bytes(), *c)
                .unwrap();
            out
        })
        .collect()
}

#[test]
fn exporter_equals_openssl_with_and_without_context() {
    for &suite in CipherSuite::ALL {
        // OpenSSL server, our client.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = thread::spawn(move || {
            let (tcp, _) = l.accept().unwrap();
            let ssl = openssl::ssl::Ssl::new(&openssl_ctx(true, suite)).unwrap();
            let mut s = ssl.accept(tcp).unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            s.write_all(b"pong").unwrap();
            openssl_exports(&s)
        });
        let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
        let cfg = Arc::new(ClientConfig::builder(psk).suites(&[suite]).build().unwrap());
        let mut ours = m2msec_std::connect(
            TcpStream::connect(("127.0.0.1", port)).unwrap(),
            cfg,
            Some("localhost"),
        )
        .unwrap();
        ours.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        ours.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"pong");
        let theirs = srv.join().unwrap();
        let mine = our_exports(&ours);
        assert_eq!(mine, theirs, "{suite}: client side");
        assert_ne!(mine[0], mine[1], "no context differs from an empty one");
        assert_ne!(mine[1], mine[2]);

        // Our server, OpenSSL client.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let cli = thread::spawn(move || {
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let ssl = openssl::ssl::Ssl::new(&openssl_ctx(false, suite)).unwrap();
            let mut s = ssl.connect(tcp).unwrap();
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            openssl_exports(&s)
        });
        let (tcp, _) = l.accept().unwrap();
        let mut t = PskTable::new();
        t.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
        let scfg = Arc::new(
            ServerConfig::builder(Box::new(t))
                .suites(&[suite])
                .build()
                .unwrap(),
        );
        let mut ours = m2msec_std::accept(tcp, scfg).unwrap();
        let mut b = [0u8; 4];
        ours.read_exact(&mut b).unwrap();
        ours.write_all(b"pong").unwrap();
        let theirs = cli.join().unwrap();
        assert_eq!(our_exports(&ours), theirs, "{suite}: server side");
    }
}
