//! The accept loops the framework servers share (MEF, MAF, registrar, BSF): connections are
//! accepted until the stop signal turns true (or its sender is dropped), each is served in its
//! own task, at most `max` at once (further TCP clients wait in the listen backlog; DTLS
//! handshakes wait in the listener); stopping ends every connection task before returning.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::dtls::{Accepted, DtlsConnection, DtlsListener};
use crate::Error;

/// The pause after a listener error such as EMFILE before accepting again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// An accept error that concerns one connection only (reset before it was accepted, and
/// similar): the loop goes on at once.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Accepts TCP connections from `listener` and runs `serve(tcp, peer)` for each in its own task.
/// Transient accept errors are ignored; other accept errors (e.g. EMFILE) go to
/// `accept_failed` and are retried after a pause, so the loop itself never fails.
pub(crate) async fn tcp<S, Fut, E>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    max: usize,
    mut serve: S,
    mut accept_failed: E,
) -> io::Result<()>
where
    S: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    E: FnMut(&io::Error),
{
    let mut tasks = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = listener.accept(), if tasks.len() < max => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(serve(tcp, peer));
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    accept_failed(&e);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// Accepts DTLS sessions from `listener` and runs `serve(conn)` for each established one in its
/// own task; a failed handshake goes to `handshake_failed` (with the client's PSK identity when
/// the listener looked its key up). Ends with an error only if the listener itself fails (its
/// socket).
pub(crate) async fn dtls<S, Fut, F>(
    mut listener: DtlsListener,
    mut stop: watch::Receiver<bool>,
    max: usize,
    mut serve: S,
    mut handshake_failed: F,
) -> io::Result<()>
where
    S: FnMut(DtlsConnection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    F: FnMut(SocketAddr, Error, Option<Vec<u8>>),
{
    let mut tasks = JoinSet::new();
    let result = loop {
        if *stop.borrow() {
            break Ok(());
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
            }
            accepted = listener.accept_or_failure(), if tasks.len() < max => match accepted {
                Ok(Accepted::Connection(conn)) => {
                    tasks.spawn(serve(conn));
                }
                Ok(Accepted::Failed {
                    peer,
                    error,
                    psk_identity,
                }) => handshake_failed(peer, error, psk_identity),
                Err(e) => break Err(io::Error::from(e)),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    tasks.shutdown().await;
    result
}
