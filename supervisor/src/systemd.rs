//! clawkeep under systemd on an existing host: the unit `clawkeep unit` writes (`Type=notify`,
//! `Delegate=yes`, a watchdog, stop timeouts from the fleet), and what `clawkeep up` tells
//! systemd through `NOTIFY_SOCKET`: ready once every agent runs, a watchdog ping while the
//! supervisor's runtime answers, stopping at shutdown. Outside systemd (no NOTIFY_SOCKET)
//! nothing is sent.

use std::path::Path;
use std::time::Duration;

use crate::fleet::Fleet;

/// Tell systemd the fleet is up, with `status` as the unit's status line.
pub fn ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tell systemd the supervisor is stopping its agents.
pub fn stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

/// How often systemd wants a watchdog ping from this process, if it does.
pub fn watchdog() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|p| !p.is_zero())
}

/// Ping the watchdog every half period, for as long as the task runs (a runtime that stops
/// answering stops the pings, and systemd restarts the unit).
pub async fn keep_watchdog(period: Duration) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot tell systemd: {e}");
    }
}

/// The watchdog period the unit asks for.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// The unit that runs `binary up fleet_path`: systemd waits for the ready message (OpenClaw
/// agents may take minutes to start), delegates the cgroup subtree to clawkeep, restarts it
/// when it fails or stops pinging, and waits at stop for the longest agent grace plus the
/// brains' last pushes before it kills what is left.
pub fn unit(fleet: &Fleet, binary: &Path, fleet_path: &Path) -> String {
    let grace = fleet
        .agents
        .iter()
        .map(|a| a.stop_grace)
        .max()
        .unwrap_or_default()
        + crate::brains::LAST_PUSH_DEADLINE
        + Duration::from_secs(30);
    format!(
        "\
# clawkeep as a systemd service, written by `clawkeep unit`.
#   cp clawkeep.service /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now clawkeep && journalctl -u clawkeep -f
[Unit]
Description=clawkeep: the agents of {fleet}
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={binary} up {fleet}
# Ready once every agent runs: an OpenClaw gateway may take minutes to start.
TimeoutStartSec=15min
# The longest stop grace of the fleet, the brains' last pushes, and a margin.
TimeoutStopSec={stop}s
KillMode=mixed
Restart=on-failure
RestartSec=5s
WatchdogSec={watchdog}s
# clawkeep makes and limits a cgroup per agent and service.
Delegate=yes
LimitNOFILE=1048576
Environment=NO_COLOR=1

[Install]
WantedBy=multi-user.target
",
        fleet = fleet_path.display(),
        binary = binary.display(),
        stop = grace.as_secs(),
        watchdog = WATCHDOG.as_secs(),
    )
}
