//! `clawkeep spend`: the token ledger summed per agent, team or model. Reads the ledger
//! files directly, so it works while the supervisor is down too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use clawkeep_gateway::ledger::{self, LedgerError, Outcome, TornLines};
use serde::Serialize;

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// One row per agent.
    Agent,
    /// One row per team (agents without a team under "-").
    Team,
    /// One row per model.
    Model,
}

/// One row of `clawkeep spend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Agent, team or model.
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt plus completion.
    pub total_tokens: u64,
    /// Requests that did not complete (refused, upstream errors, cut by the client).
    pub errors: u64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Rows, biggest spender first.
    pub rows: Vec<Row>,
    /// Ledger lines skipped because a crash tore them.
    #[serde(skip)]
    pub torn: TornLines,
}

/// Sum the ledger in `dir` since `since`, grouped `by`.
pub fn report(dir: &Path, since: SystemTime, by: By) -> Result<Report, LedgerError> {
    // A record at a time: a ledger of any size is summed in constant memory.
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let torn = ledger::for_each(dir, since, |r| {
        let key = match by {
            By::Agent => r.agent.clone(),
            By::Team => r.team.clone().unwrap_or_else(|| "-".into()),
            By::Model => r.model.clone(),
        };
        let row = rows.entry(key.clone()).or_insert_with(|| Row {
            name: key,
            ..Row::default()
        });
        row.requests += 1;
        row.prompt_tokens += r.prompt_tokens;
        row.completion_tokens += r.completion_tokens;
        row.total_tokens += r.tokens();
        if r.outcome != Outcome::Ok {
            row.errors += 1;
        }
    })?;
    let mut rows: Vec<Row> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.total_tokens
            .cmp(&a.total_tokens)
            .then(a.name.cmp(&b.name))
    });
    Ok(Report { rows, torn })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawkeep_gateway::ledger::{Ledger, Record};

    fn rec(
        agent: &str,
        team: Option<&str>,
        model: &str,
        p: u64,
        c: u64,
        outcome: Outcome,
    ) -> Record {
        Record {
            ts_ms: ledger::unix_ms(SystemTime::now()),
            agent: agent.into(),
            team: team.map(str::to_string),
            model: model.into(),
            requested: None,
            upstream: Some("u".into()),
            prompt_tokens: p,
            completion_tokens: c,
            latency_ms: 3,
            status: 200,
            outcome,
            estimated: false,
        }
    }

    #[test]
    fn sums_by_agent_team_and_model() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(d.path()).unwrap();
        l.append(&rec("research", Some("lab"), "tiny", 10, 5, Outcome::Ok))
            .unwrap();
        l.append(&rec(
            "research",
            Some("lab"),
            "big",
            1,
            1,
            Outcome::ClientClosed,
        ))
        .unwrap();
        l.append(&rec("customer", None, "tiny", 2, 3, Outcome::Ok))
            .unwrap();
        let since = SystemTime::now() - std::time::Duration::from_secs(60);
        let by_agent = report(d.path(), since, By::Agent).unwrap();
        assert_eq!(
            by_agent.rows[0],
            Row {
                name: "research".into(),
                requests: 2,
                prompt_tokens: 11,
                completion_tokens: 6,
                total_tokens: 17,
                errors: 1,
            }
        );
        assert_eq!(report(d.path(), since, By::Team).unwrap().rows[1].name, "-");
        let by_model = report(d.path(), since, By::Model).unwrap();
        let totals: Vec<(&str, u64)> = by_model
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.total_tokens))
            .collect();
        assert_eq!(totals, [("tiny", 20), ("big", 2)]);
    }
}
