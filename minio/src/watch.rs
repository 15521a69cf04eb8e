//! Change-driven sync: inotify on a directory tree, debounced, so a push follows a write
//! within seconds. Events only say "something changed"; the pass itself rescans, so a missed
//! event costs at most one reconcile interval, never data.

use std::path::{Path, PathBuf};

use notify::{Config, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::error::StoreError;
use clawkeep_beneath::{Beneath, Kind};

/// Most directories one synced directory may have and still be watched: each costs an
/// inotify watch, charged to root's `fs.inotify.max_user_watches` that the whole node
/// shares. Past it the reconcile timer alone picks changes up.
pub const MAX_WATCHED_DIRS: usize = 2000;

/// A live watch; dropping it stops the events.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<()>,
}

/// Directories under `root` (itself included), counted without following symlinks, up to
/// `stop_after` (then `stop_after + 1`).
pub fn count_dirs(root: &Path, stop_after: usize) -> Result<usize, StoreError> {
    let within = Beneath::open(root).map_err(|e| StoreError::io("open", root, e))?;
    let mut stack = vec![PathBuf::new()];
    let mut n = 0;
    while let Some(dir) = stack.pop() {
        n += 1;
        if n > stop_after {
            break;
        }
        // Removed or swapped for a symlink since it was listed: not a directory of ours now.
        let Ok(entries) = within.list(&dir) else {
            continue;
        };
        stack.extend(
            entries
                .into_iter()
                .filter(|e| e.kind == Kind::Dir)
                .map(|e| dir.join(e.name)),
        );
    }
    Ok(n)
}

impl Watch {
    /// Watch `root` recursively, never following symlinks (an agent's link to `/sys` or `/`
    /// must not make root watch the host). A tree of more than `max_dirs` directories is
    /// refused. Paths under `.clawkeep-sync` (the pass's own staging) are ignored so a pull
    /// does not trigger a push. Blocking: walks the tree.
    pub fn new(root: &Path, max_dirs: usize) -> Result<Self, StoreError> {
        let dirs = count_dirs(root, max_dirs)?;
        if dirs > max_dirs {
            return Err(StoreError::Refused(format!(
                "{} has more than {max_dirs} directories, too many to watch (each costs an \
                 inotify watch the whole node shares); changes are picked up by the reconcile \
                 timer instead",
                root.display()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let handler = move |ev: notify::Result<notify::Event>| {
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
        };
        let config = Config::default().with_follow_symlinks(false);
        let mut w = notify::RecommendedWatcher::new(handler, config)
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
