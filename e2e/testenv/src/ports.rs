//! Picks free TCP ports on 127.0.0.1 for the control-plane processes.
//!
//! The kernel hands out a free ephemeral port for a bind to port 0; we close
//! the socket and pass the number on. Another process may grab it before the
//! server binds, so callers retry with new ports when a server reports
//! "address already in use" (see [`is_bind_conflict`]). Within one test binary
//! a port is never handed out twice, so concurrent environments there cannot
//! race each other.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that was free a moment ago and not yet given to anyone
/// else in this process.
pub fn free_port() -> Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding 127.0.0.1:0 to find a free port")?;
        let port = listener.local_addr()?.port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    bail!("no unused port on 127.0.0.1 after 64 tries")
}

/// Whether a server's log says it lost the race for its port.
pub fn is_bind_conflict(log: &str) -> bool {
    log.contains("address already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_within_the_process() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|p| *p != 0));
    }

    #[test]
    fn recognises_bind_conflicts() {
        assert!(is_bind_conflict(
            "listen tcp 127.0.0.1:6443: bind: address already in use"
        ));
        assert!(!is_bind_conflict("etcd: ready to serve client requests"));
    }
}
