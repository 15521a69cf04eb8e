//! Change-driven sync: inotify on a directory tree, debounced, so a push follows a write
//! within seconds. Events only say "something changed"; the pass itself rescans, so a missed
//! event costs at most one reconcile interval, never data.

use std::path::Path;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::error::StoreError;

/// A live watch; dropping it stops the events.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<()>,
}

impl Watch {
    /// Watch `root` recursively. Paths under `.clawkeep-sync` (the pass's own staging) are
    /// ignored so a pull does not trigger a push.
    pub fn new(root: &Path) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let relevant = match &ev {
                Ok(e) => {
                    !e.kind.is_access()
                        && !e
                            .paths
                            .iter()
                            .all(|p| p.components().any(|c| c.as_os_str() == ".clawkeep-sync"))
                }
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        })
        .map_err(|e| StoreError::Refused(format!("cannot watch {}: {e}", root.display())))?;
        w.watch(root, RecursiveMode::Recursive).map_err(|e| {
            StoreError::Refused(format!(
                "cannot watch {}: {e} (raise fs.inotify.max_user_watches?)",
                root.display()
            ))
        })?;
        Ok(Watch { _watcher: w, rx })
    }

    /// The next change event; cancel-safe (an event is never lost to a `select!`).
    pub async fn recv(&mut self) -> Option<()> {
        self.rx.recv().await
    }
}
