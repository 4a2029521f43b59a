//! Connection slots: the run's budget (`--max-connections`) and each
//! host's (`--max-per-host`), taken by every connection before it is
//! opened, and given back when it ends (which wakes the dispatcher). A host
//! seen answering over HTTP/2 carries its downloads as streams on one
//! connection, so it takes no slot.
//!
//! A freed slot goes to a queued job first: the dispatcher, once it has
//! started every job that fits, offers what is left ([`Limits::offer_spare`])
//! to the split files already running, whose extra connections join them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

/// Connection slots: a budget for the whole run and one per host. Every
/// connection holds a [`ConnPermit`], the first of a job and the extra ones
/// of a segmented download alike.
pub(crate) struct Limits {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HostSlots>,
    freed: Arc<Notify>,
    /// Bumped each time the dispatcher leaves slots to running files; a
    /// watch so that an offer made while a file is busy joining is not
    /// lost.
    spare: watch::Sender<u64>,
}

/// Host semaphores kept before those with no connection out are dropped.
const HOSTS_KEPT: usize = 1024;

/// Each host's connection semaphore, for the hosts seen lately.
struct HostSlots {
    by_host: HashMap<String, HostSlot>,
    /// The size at which the next new host first drops the idle ones.
    prune_at: usize,
}

/// One host's connections, and whether it answers over HTTP/2.
struct HostSlot {
    sem: Arc<Semaphore>,
    /// Its answers came over HTTP/2, where every download to it is a
    /// stream on one shared connection: the caps count connections, so
    /// they no longer hold its downloads back (its job slots still do, see
    /// `slots`, and the server's own stream limit, which the client waits
    /// on).
    multiplexed: bool,
}

/// One connection's right to exist; dropping it wakes the dispatcher.
pub(crate) struct ConnPermit {
    global: Option<OwnedSemaphorePermit>,
    host: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        // Release before notifying, or the woken dispatcher could find the
        // slot still taken and sleep on a notification already spent.
        self.global.take();
        self.host.take();
        self.freed.notify_one();
    }
}

impl Limits {
    pub(super) fn new(global: usize, per_host: usize) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(global)),
            per_host,
            hosts: Mutex::new(HostSlots {
                by_host: HashMap::new(),
                prune_at: HOSTS_KEPT,
            }),
            freed: Arc::new(Notify::new()),
            spare: watch::Sender::new(0),
        }
    }

    /// Tells the running split files that slots may be free which no
    /// queued job can take now: they may try for more connections.
    pub(super) fn offer_spare(&self) {
        self.spare
            .send_modify(|offers| *offers = offers.wrapping_add(1));
    }

    /// The offers of [`Limits::offer_spare`] from now on.
    pub(crate) fn spare_offers(&self) -> watch::Receiver<u64> {
        self.spare.subscribe()
    }

    /// Resolves when a connection ends (or a host turns out to multiplex):
    /// a queued job may fit now.
    pub(super) async fn freed(&self) {
        self.freed.notified().await
    }

    /// A connection to `host` if both budgets allow one now.
    pub(crate) fn try_acquire(&self, host: &str) -> Option<ConnPermit> {
        let host_sem = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            if hosts.by_host.len() >= hosts.prune_at && !hosts.by_host.contains_key(host) {
                // A semaphore only this map holds has no permit out (each
                // permit holds its semaphore), so dropping it loses no
                // count: a long stream's hosts are not all kept. Doubling
                // the mark keeps the sweeps rare.
                hosts
                    .by_host
                    .retain(|_, slot| Arc::strong_count(&slot.sem) > 1);
                hosts.prune_at = (2 * hosts.by_host.len()).max(HOSTS_KEPT);
            }
            let slot = hosts
                .by_host
                .entry(host.to_string())
                .or_insert_with(|| HostSlot {
                    sem: Arc::new(Semaphore::new(self.per_host)),
                    multiplexed: false,
                });
            if slot.multiplexed {
                return Some(ConnPermit {
                    global: None,
                    host: None,
                    freed: self.freed.clone(),
                });
            }
            slot.sem.clone()
        };
        let host = host_sem.try_acquire_owned().ok()?;
        let global = self.global.clone().try_acquire_owned().ok()?;
        Some(ConnPermit {
            global: Some(global),
            host: Some(host),
            freed: self.freed.clone(),
        })
    }
}

impl Limits {
    /// Whether `host` was seen answering over HTTP/2 (its downloads take
    /// no connection slot, and may take the extra job slots).
    pub(crate) fn multiplexed(&self, host: &str) -> bool {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.by_host.get(host).is_some_and(|slot| slot.multiplexed)
    }

    /// Learns from an answer to a request for `asked` whether its host
    /// multiplexes (HTTP/2, and no redirect to another host on the way);
    /// once it does, queued downloads for it may start at once.
    pub(crate) fn note_answer(&self, asked: &url::Url, answer: &reqwest::Response) {
        if answer.version() != reqwest::Version::HTTP_2 {
            return;
        }
        let host = host_key(asked);
        if host_key(answer.url()) != host {
            return;
        }
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = hosts.by_host.get_mut(&host) else {
            return;
        };
        if !slot.multiplexed {
            slot.multiplexed = true;
            self.freed.notify_one();
        }
    }
}

pub(crate) fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_hosts_are_forgotten_but_a_busy_host_keeps_its_limit() {
        let limits = Limits::new(10, 1);
        let held = limits.try_acquire("busy:80").expect("a free slot");
        for n in 0..3 * HOSTS_KEPT {
            let permit = limits.try_acquire(&format!("h{n}:80"));
            assert!(permit.is_some(), "host {n}");
        }
        let kept = limits.hosts.lock().map(|h| h.by_host.len()).unwrap_or(0);
        assert!(kept <= 2 * HOSTS_KEPT, "{kept} host semaphores kept");
        assert!(limits.try_acquire("busy:80").is_none());
        drop(held);
        assert!(limits.try_acquire("busy:80").is_some());
    }
}
