//! Daily token budgets per agent and per team: counted from the ledger, reset at UTC
//! midnight, checked before a request goes upstream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::ledger::{day_number, next_midnight, Record};

/// Which budget is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// "agent research" or "team support".
    pub who: String,
    /// The daily limit.
    pub limit: u64,
    /// Tokens used today.
    pub used: u64,
    /// When it resets (next UTC midnight).
    pub resets_at: SystemTime,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the daily token budget of {} is spent ({} of {} tokens used); it resets at {}",
            self.who,
            self.used,
            self.limit,
            humantime::format_rfc3339_seconds(self.resets_at)
        )
    }
}

/// Add to a name's count (the name is copied only the first time it is seen).
fn add_to(counts: &mut HashMap<String, u64>, name: &str, tokens: u64) {
    match counts.get_mut(name) {
        Some(n) => *n += tokens,
        None => {
            counts.insert(name.to_string(), tokens);
        }
    }
}

#[derive(Default)]
struct Day {
    /// Days since the epoch (`ledger::day_number`).
    day: u64,
    agents: HashMap<String, u64>,
    teams: HashMap<String, u64>,
}

/// Today's spending.
#[derive(Default)]
pub struct Budgets {
    today: Mutex<Day>,
}

impl Budgets {
    fn day<'a>(&'a self, now: SystemTime) -> std::sync::MutexGuard<'a, Day> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        let mut d = self.today.lock().unwrap_or_else(|p| p.into_inner());
        let today = day_number(now);
        if d.day != today {
            *d = Day {
                day: today,
                ..Day::default()
            };
        }
        d
    }

    /// Count a billed request that happened at `at`.
    pub fn add(&self, r: &Record, at: SystemTime, now: SystemTime) {
        if day_number(at) != day_number(now) {
            return;
        }
        let mut d = self.day(now);
        add_to(&mut d.agents, &r.agent, r.tokens());
        if let Some(t) = &r.team {
            add_to(&mut d.teams, t, r.tokens());
        }
    }

    /// Tokens `agent` (and its team) used today.
    pub fn used(&self, agent: &str, team: Option<&str>, now: SystemTime) -> (u64, u64) {
        let d = self.day(now);
        (
            d.agents.get(agent).copied().unwrap_or(0),
            team.and_then(|t| d.teams.get(t).copied()).unwrap_or(0),
        )
    }

    /// Refuse when the agent's or its team's budget for today is spent.
    pub fn check(
        &self,
        agent: &str,
        agent_limit: Option<u64>,
        team: Option<&str>,
        team_limit: Option<u64>,
        now: SystemTime,
    ) -> Result<(), Exhausted> {
        let (a, t) = self.used(agent, team, now);
        if let Some(limit) = agent_limit {
            if a >= limit {
                return Err(Exhausted {
                    who: format!("agent {agent}"),
                    limit,
                    used: a,
                    resets_at: next_midnight(now),
                });
            }
        }
        if let (Some(team), Some(limit)) = (team, team_limit) {
            if t >= limit {
                return Err(Exhausted {
                    who: format!("team {team}"),
                    limit,
                    used: t,
                    resets_at: next_midnight(now),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Outcome;
    use std::time::{Duration, UNIX_EPOCH};

    fn rec(agent: &str, team: Option<&str>, tokens: u64) -> Record {
        Record {
            ts_ms: 0,
            agent: agent.into(),
            team: team.map(str::to_string),
            model: "m".into(),
            requested: None,
            upstream: None,
            prompt_tokens: tokens,
            completion_tokens: 0,
            latency_ms: 0,
            status: 200,
            outcome: Outcome::Ok,
            estimated: false,
        }
    }

    #[test]
    fn agent_then_team_budget_and_reset_at_midnight() {
        let morning = UNIX_EPOCH + Duration::from_secs(1_795_392_000 + 3600);
        let b = Budgets::default();
        b.add(&rec("a", Some("t"), 90), morning, morning);
        assert!(b
            .check("a", Some(100), Some("t"), Some(150), morning)
            .is_ok());
        b.add(&rec("a", Some("t"), 10), morning, morning);
        let e = b
            .check("a", Some(100), Some("t"), Some(150), morning)
            .unwrap_err();
        assert_eq!(e.who, "agent a");
        assert_eq!(
            e.to_string(),
            "the daily token budget of agent a is spent (100 of 100 tokens used); it resets at 2026-11-24T00:00:00Z"
        );
        b.add(&rec("b", Some("t"), 60), morning, morning);
        assert_eq!(
            b.check("b", None, Some("t"), Some(150), morning)
                .unwrap_err()
                .who,
            "team t"
        );
        let tomorrow = morning + Duration::from_secs(86_400);
        assert!(b
            .check("a", Some(100), Some("t"), Some(150), tomorrow)
            .is_ok());
        assert_eq!(b.used("a", Some("t"), tomorrow), (0, 0));
    }
}
