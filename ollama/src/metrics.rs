//! Prometheus metrics of the gateway: the same numbers as `clawkeep spend`, live.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ledger::{Outcome, Record};

/// Labels of per-request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Agent name.
    pub agent: String,
    /// Team ("" when none).
    pub team: String,
    /// Model as the agent named it.
    pub model: String,
}

/// Labels of per-upstream series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream name.
    pub upstream: String,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<RequestLabels, Counter>,
    prompt: Family<RequestLabels, Counter>,
    completion: Family<RequestLabels, Counter>,
    up: Family<UpstreamLabels, Gauge>,
    waiting: Family<UpstreamLabels, Gauge>,
    /// Each agent's series, found in the families once: a family lookup builds, hashes and
    /// compares the labels, four times per request (a few % of a whole answer's CPU).
    series: Mutex<HashMap<String, Vec<Series>>>,
}

/// The counters of one (agent, team, model); they share their values with the families.
struct Series {
    team: String,
    model: String,
    requests: Counter,
    prompt: Counter,
    completion: Counter,
    /// Created at the first error, so agents without errors show no error series.
    errors: Option<Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clawkeep_gateway");
        let m = Metrics {
            requests: Family::default(),
            errors: Family::default(),
            prompt: Family::default(),
            completion: Family::default(),
            up: Family::default(),
            waiting: Family::default(),
            registry: Registry::default(),
            series: Mutex::new(HashMap::new()),
        };
        registry.register(
            "requests",
            "Requests per agent, team and model",
            m.requests.clone(),
        );
        registry.register("errors", "Requests that did not complete", m.errors.clone());
        registry.register("prompt_tokens", "Prompt tokens billed", m.prompt.clone());
        registry.register(
            "completion_tokens",
            "Completion tokens billed",
            m.completion.clone(),
        );
        registry.register(
            "upstream_up",
            "1 when the upstream passes its health check",
            m.up.clone(),
        );
        registry.register(
            "queue_waiting",
            "Requests waiting for an upstream slot",
            m.waiting.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Count a billed request.
    pub fn record(&self, r: &Record) {
        let team = r.team.as_deref().unwrap_or_default();
        let labels = || RequestLabels {
            agent: r.agent.clone(),
            team: team.to_string(),
            model: r.model.clone(),
        };
        // Plain counters: a panic elsewhere cannot leave the cache inconsistent.
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mine = match all.get_mut(&r.agent) {
            Some(v) => v,
            None => all.entry(r.agent.clone()).or_default(),
        };
        let at = match mine
            .iter()
            .position(|s| s.team == team && s.model == r.model)
        {
            Some(i) => i,
            None => {
                let l = labels();
                mine.push(Series {
                    team: l.team.clone(),
                    model: l.model.clone(),
                    requests: self.requests.get_or_create(&l).clone(),
                    prompt: self.prompt.get_or_create(&l).clone(),
                    completion: self.completion.get_or_create(&l).clone(),
                    errors: None,
                });
                mine.len() - 1
            }
        };
        let s = &mut mine[at];
        s.requests.inc();
        if r.outcome != Outcome::Ok {
            s.errors
                .get_or_insert_with(|| self.errors.get_or_create(&labels()).clone())
                .inc();
        }
        s.prompt.inc_by(r.prompt_tokens);
        s.completion.inc_by(r.completion_tokens);
    }

    /// Set an upstream's health and queue length.
    pub fn upstream(&self, name: &str, up: bool, waiting: usize) {
        let l = UpstreamLabels {
            upstream: name.to_string(),
        };
        self.up.get_or_create(&l).set(i64::from(up));
        self.waiting.get_or_create(&l).set(waiting as i64);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text() {
        let m = Metrics::default();
        m.record(&Record {
            ts_ms: 0,
            agent: "research".into(),
            team: Some("lab".into()),
            model: "tiny".into(),
            requested: None,
            upstream: Some("u".into()),
            prompt_tokens: 7,
            completion_tokens: 5,
            latency_ms: 1,
            status: 200,
            outcome: Outcome::Ok,
            estimated: false,
        });
        m.upstream("u", true, 2);
        let t = m.encode();
        assert!(t.contains(r#"clawkeep_gateway_prompt_tokens_total{agent="research",team="lab",model="tiny"} 7"#), "{t}");
        assert!(t.contains(r#"clawkeep_gateway_completion_tokens_total{agent="research",team="lab",model="tiny"} 5"#), "{t}");
        assert!(
            t.contains(
                r#"clawkeep_gateway_requests_total{agent="research",team="lab",model="tiny"} 1"#
            ),
            "{t}"
        );
        assert!(
            t.contains(r#"clawkeep_gateway_queue_waiting{upstream="u"} 2"#),
            "{t}"
        );
        assert!(!t.contains("errors_total{"), "no error yet: {t}");
    }

    #[test]
    fn the_cached_series_keep_adding_up_per_agent_team_and_model() {
        let m = Metrics::default();
        let rec = |agent: &str, team: Option<&str>, model: &str, outcome| Record {
            ts_ms: 0,
            agent: agent.into(),
            team: team.map(str::to_string),
            model: model.into(),
            requested: None,
            upstream: None,
            prompt_tokens: 3,
            completion_tokens: 2,
            latency_ms: 1,
            status: 200,
            outcome,
            estimated: false,
        };
        m.record(&rec("a", Some("t"), "x", Outcome::Ok));
        m.record(&rec("a", Some("t"), "x", Outcome::ClientClosed));
        m.record(&rec("a", Some("t"), "y", Outcome::Ok));
        m.record(&rec("a", None, "x", Outcome::Ok));
        m.record(&rec("b", Some("t"), "x", Outcome::UpstreamError));
        let t = m.encode();
        for line in [
            r#"clawkeep_gateway_requests_total{agent="a",team="t",model="x"} 2"#,
            r#"clawkeep_gateway_prompt_tokens_total{agent="a",team="t",model="x"} 6"#,
            r#"clawkeep_gateway_errors_total{agent="a",team="t",model="x"} 1"#,
            r#"clawkeep_gateway_requests_total{agent="a",team="t",model="y"} 1"#,
            r#"clawkeep_gateway_requests_total{agent="a",team="",model="x"} 1"#,
            r#"clawkeep_gateway_completion_tokens_total{agent="b",team="t",model="x"} 2"#,
            r#"clawkeep_gateway_errors_total{agent="b",team="t",model="x"} 1"#,
        ] {
            assert!(t.contains(line), "{line} in {t}");
        }
        assert!(
            !t.contains(r#"errors_total{agent="a",team="t",model="y"}"#),
            "{t}"
        );
    }
}
