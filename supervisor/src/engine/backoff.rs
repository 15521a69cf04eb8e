//! Restart decisions: exponential backoff with a cap, and the crash-loop state after too many
//! restarts in a window. Pure logic, driven by the process task.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::fleet::{Restart, RestartMode};
use clawkeep_sandbox::status::ExitReason;

/// What to do after a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Leave it stopped (policy `never`, or `on-failure` after a clean exit).
    Stay,
    /// Start again after this delay.
    Backoff(Duration),
    /// Too many restarts in the window: hold it this long, then try once more.
    CrashLoop(Duration),
}

/// Restart bookkeeping of one process.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Restart,
    /// Consecutive quick failures, for the exponent.
    streak: u32,
    /// When recent restarts happened, for crash-loop detection.
    recent: VecDeque<Instant>,
}

impl Tracker {
    /// A tracker for `policy`.
    pub fn new(policy: Restart) -> Self {
        Self {
            policy,
            streak: 0,
            recent: VecDeque::new(),
        }
    }

    /// Forget past failures (after a manual start or a crash-loop hold).
    pub fn reset(&mut self) {
        self.streak = 0;
        self.recent.clear();
    }

    /// Decide what follows an exit at `now` after the process ran for `ran`.
    pub fn on_exit(&mut self, reason: ExitReason, ran: Duration, now: Instant) -> Decision {
        let restart = match self.policy.mode {
            RestartMode::Always => true,
            RestartMode::OnFailure => reason.is_failure(),
            RestartMode::Never => false,
        };
        if !restart {
            return Decision::Stay;
        }
        // A run that lasted a whole window was healthy: start the backoff over.
        if ran >= self.policy.crash_window {
            self.streak = 0;
        }
        self.streak = self.streak.saturating_add(1);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.crash_window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() as u32 >= self.policy.crash_failures {
            self.reset();
            return Decision::CrashLoop(self.policy.crash_hold);
        }
        let factor = 1u32.checked_shl(self.streak - 1).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .backoff_initial
            .checked_mul(factor)
            .unwrap_or(self.policy.backoff_max)
            .min(self.policy.backoff_max);
        Decision::Backoff(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: RestartMode) -> Restart {
        Restart {
            mode,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            crash_failures: 5,
            crash_window: Duration::from_secs(10),
            crash_hold: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_crash_loops() {
        let mut t = Tracker::new(policy(RestartMode::Always));
        let t0 = Instant::now();
        let quick = Duration::from_millis(10);
        let ds: Vec<_> = (0..5)
            .map(|i| t.on_exit(ExitReason::Code(1), quick, t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(
            ds,
            vec![
                Decision::Backoff(Duration::from_millis(100)),
                Decision::Backoff(Duration::from_millis(200)),
                Decision::Backoff(Duration::from_millis(400)),
                Decision::Backoff(Duration::from_millis(500)),
                Decision::CrashLoop(Duration::from_secs(60)),
            ]
        );
        // After the hold, the count starts over.
        assert_eq!(
            t.on_exit(ExitReason::Code(1), quick, t0 + Duration::from_secs(70)),
            Decision::Backoff(Duration::from_millis(100))
        );
    }

    #[test]
    fn failures_spread_over_time_do_not_crash_loop() {
        let mut t = Tracker::new(policy(RestartMode::Always));
        let t0 = Instant::now();
        for i in 0..20 {
            let d = t.on_exit(
                ExitReason::Code(1),
                Duration::from_secs(11),
                t0 + Duration::from_secs(11 * i),
            );
            assert_eq!(d, Decision::Backoff(Duration::from_millis(100)));
        }
    }

    #[test]
    fn policies() {
        let now = Instant::now();
        let mut never = Tracker::new(policy(RestartMode::Never));
        assert_eq!(
            never.on_exit(ExitReason::Oom, Duration::ZERO, now),
            Decision::Stay
        );
        let mut onf = Tracker::new(policy(RestartMode::OnFailure));
        assert_eq!(
            onf.on_exit(ExitReason::Code(0), Duration::ZERO, now),
            Decision::Stay
        );
        assert!(matches!(
            onf.on_exit(ExitReason::Signal(9), Duration::ZERO, now),
            Decision::Backoff(_)
        ));
    }
}
