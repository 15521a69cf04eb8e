//! Prometheus metrics of the gateway: the same numbers as `clawkeep spend`, live.

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
        let l = RequestLabels {
            agent: r.agent.clone(),
            team: r.team.clone().unwrap_or_default(),
            model: r.model.clone(),
        };
        self.requests.get_or_create(&l).inc();
        if r.outcome != Outcome::Ok {
            self.errors.get_or_create(&l).inc();
        }
        self.prompt.get_or_create(&l).inc_by(r.prompt_tokens);
        self.completion
            .get_or_create(&l)
            .inc_by(r.completion_tokens);
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
    }
}
