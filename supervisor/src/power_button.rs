//! The power button, for clawkeep as a node's PID 1: the ACPI button driver reports a
//! press as KEY_POWER on an input device (`/dev/input/event*`, with the `button` and
//! `evdev` modules stage 1 loads). A press means the same as SIGTERM: stop the fleet in
//! order, push every brain, power off. QEMU's `system_powerdown` presses it.

use std::path::{Path, PathBuf};

use evdev::raw_stream::RawDevice;
use evdev::{EventType, KeyCode};

/// The input devices under `dir` (`/dev/input`) that have a power key.
pub fn find(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("event"))
        })
        .filter(|p| {
            RawDevice::open(p).is_ok_and(|d| {
                d.supported_keys()
                    .is_some_and(|k| k.contains(KeyCode::KEY_POWER))
            })
        })
        .collect();
    found.sort();
    found
}

/// Resolves when the power key of any device under `dir` is pressed, with that device's
/// name; never, when there is no such device (logged once).
pub async fn pressed(dir: PathBuf) -> String {
    let devices = find(&dir);
    if devices.is_empty() {
        tracing::info!(
            "no power button under {} (the button and evdev modules are not loaded?): SIGTERM or SIGPWR stops the node",
            dir.display()
        );
        return std::future::pending().await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    for path in devices {
        let tx = tx.clone();
        let stream = RawDevice::open(&path).and_then(|d| {
            let name = d.name().unwrap_or("power button").to_string();
            d.into_event_stream().map(|s| (s, name))
        });
        let (mut stream, name) = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch {}: {e}", path.display());
                continue;
            }
        };
        tracing::info!("watching {} ({name}) for the power button", path.display());
        tokio::spawn(async move {
            while let Ok(ev) = stream.next_event().await {
                let power = ev.event_type() == EventType::KEY
                    && ev.code() == KeyCode::KEY_POWER.code()
                    && ev.value() == 1;
                if power {
                    let _ = tx.send(format!("{name} ({})", path.display())).await;
                    return;
                }
            }
        });
    }
    drop(tx);
    match rx.recv().await {
        Some(name) => name,
        None => std::future::pending().await,
    }
}
