//! The oneM2M TS-0003 frameworks over the tokio adapter: the network side of the sans-IO
//! servers of [`m2msec::frameworks`] (wire contract: `docs/protocol.md`).

pub mod maf;
pub mod mef;
