//! The monitoring objects, with `[cluster] monitoring`: a PodMonitor that has Prometheus
//! scrape the model gateway's `/metrics`, a PrometheusRule (the gateway or a model server
//! down, requests failing or queued, and each budget from the fleet nearly spent), and the
//! Grafana spend dashboard as a ConfigMap labelled for Grafana's dashboard sidecar. The two
//! Prometheus operator kinds have no k8s-openapi types: they are built as JSON around typed
//! metadata and checked against the operator's CRD schemas in the tests.

use serde_json::{json, Value};

use super::agent::GATEWAY_NAME;
use super::gateway::{meta, pods};
use super::meta::SYSTEM_NAMESPACE;
use super::RenderError;
use crate::fleet::Fleet;

/// The label Grafana's dashboard sidecar looks for (the Grafana chart's default, which
/// kube-prometheus-stack sets to "1").
pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
/// Share of a daily budget at which its alert fires.
const BUDGET_WARN: f64 = 0.8;

/// The job Prometheus gives the gateway's targets (`<namespace>/<PodMonitor>`).
fn job() -> String {
    format!("{SYSTEM_NAMESPACE}/{GATEWAY_NAME}")
}

fn value<T: serde::Serialize>(what: &str, v: T) -> Result<Value, RenderError> {
    serde_json::to_value(v).map_err(|e| RenderError::Serialize {
        what: what.to_string(),
        message: e.to_string(),
    })
}

fn pod_monitor() -> Result<Value, RenderError> {
    Ok(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": value("the PodMonitor's metadata", meta(GATEWAY_NAME))?,
        "spec": {
            "selector": value("the PodMonitor's selector", pods())?,
            "podMetricsEndpoints": [{ "port": "metrics", "path": "/metrics", "interval": "30s" }],
        },
    }))
}

fn alert(name: &str, expr: String, wait: &str, severity: &str, summary: String) -> Value {
    json!({
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": { "severity": severity },
        "annotations": { "summary": summary },
    })
}

/// Tokens billed over the last day to the series matching `selector`.
fn day_tokens(selector: &str) -> String {
    format!(
        "sum(increase(clawkeep_gateway_prompt_tokens_total{{{selector}}}[1d])) + sum(increase(clawkeep_gateway_completion_tokens_total{{{selector}}}[1d]))"
    )
}

fn prometheus_rule(fleet: &Fleet) -> Result<Value, RenderError> {
    let job = job();
    let gateway = vec![
        alert(
            "ClawkeepGatewayDown",
            format!("up{{job=\"{job}\"}} == 0 or absent(up{{job=\"{job}\"}})"),
            "5m",
            "critical",
            "The model gateway is down or not scraped: agents get no model answers".into(),
        ),
        alert(
            "ClawkeepModelServerDown",
            "clawkeep_gateway_upstream_up == 0".into(),
            "5m",
            "critical",
            "Model server {{ $labels.upstream }} fails its health check".into(),
        ),
        alert(
            "ClawkeepModelRequestsFailing",
            "sum by (agent) (rate(clawkeep_gateway_errors_total[10m])) / sum by (agent) (rate(clawkeep_gateway_requests_total[10m])) > 0.25".into(),
            "10m",
            "warning",
            "More than a quarter of {{ $labels.agent }}'s model requests fail".into(),
        ),
        alert(
            "ClawkeepModelQueueBacklog",
            "max by (upstream) (clawkeep_gateway_queue_waiting) > 0".into(),
            "15m",
            "warning",
            "Requests have waited for {{ $labels.upstream }} for 15 minutes: it needs more capacity".into(),
        ),
    ];
    let mut budgets = Vec::new();
    for a in &fleet.agents {
        if let Some(b) = a.tokens_per_day {
            budgets.push(alert(
                "ClawkeepAgentBudgetNearlySpent",
                format!(
                    "{} > {}",
                    day_tokens(&format!("agent=\"{}\"", a.name)),
                    (b as f64 * BUDGET_WARN).round()
                ),
                "5m",
                "warning",
                format!(
                    "Agent {} has used over {}% of its {b} tokens a day over the last 24 hours (the gateway refuses it past the budget, counted per UTC day)",
                    a.name,
                    (BUDGET_WARN * 100.0).round()
                ),
            ));
        }
    }
    let mut teams: Vec<(&String, &u64)> = fleet
        .models
        .as_ref()
        .map(|m| m.settings.team_budgets.iter().collect())
        .unwrap_or_default();
    teams.sort();
    for (team, b) in teams {
        budgets.push(alert(
            "ClawkeepTeamBudgetNearlySpent",
            format!(
                "{} > {}",
                day_tokens(&format!("team=\"{team}\"")),
                (*b as f64 * BUDGET_WARN).round()
            ),
            "5m",
            "warning",
            format!(
                "Team {team} has used over {}% of its {b} tokens a day over the last 24 hours",
                (BUDGET_WARN * 100.0).round()
            ),
        ));
    }
    let mut groups = vec![json!({ "name": "clawkeep-gateway", "rules": gateway })];
    if !budgets.is_empty() {
        groups.push(json!({ "name": "clawkeep-budgets", "rules": budgets }));
    }
    Ok(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": value("the PrometheusRule's metadata", meta("clawkeep"))?,
        "spec": { "groups": groups },
    }))
}

/// A time series panel at grid row `y`, column `x` (half the width).
fn panel(id: u32, x: u32, y: u32, title: &str, unit: &str, targets: &[(&str, &str)]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .enumerate()
        .map(|(i, (expr, legend))| {
            json!({
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "expr": expr,
                "legendFormat": legend,
                "refId": ((b'A' + i as u8) as char).to_string(),
            })
        })
        .collect();
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "targets": targets,
    })
}

/// The Grafana dashboard: tokens per agent and team, requests and failures, model servers.
pub fn dashboard() -> Value {
    let tokens = "sum by (agent) (rate(clawkeep_gateway_prompt_tokens_total[$__rate_interval]) + rate(clawkeep_gateway_completion_tokens_total[$__rate_interval]))";
    let team_day = "sum by (team) (increase(clawkeep_gateway_prompt_tokens_total[1d]) + increase(clawkeep_gateway_completion_tokens_total[1d]))";
    json!({
        "uid": "clawkeep-spend",
        "title": "clawkeep: model spend",
        "tags": ["clawkeep"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "1m",
        "time": { "from": "now-24h", "to": "now" },
        "templating": { "list": [{
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
        }]},
        "panels": [
            panel(1, 0, 0, "Tokens per second, by agent", "short", &[(tokens, "{{agent}}")]),
            panel(2, 12, 0, "Tokens over the last day, by team", "short", &[(team_day, "{{team}}")]),
            panel(3, 0, 8, "Model requests per second, by agent", "reqps", &[
                ("sum by (agent) (rate(clawkeep_gateway_requests_total[$__rate_interval]))", "{{agent}}"),
                ("sum by (agent) (rate(clawkeep_gateway_errors_total[$__rate_interval]))", "{{agent}} failed"),
            ]),
            panel(4, 12, 8, "Model servers", "short", &[
                ("clawkeep_gateway_upstream_up", "{{upstream}} up"),
                ("clawkeep_gateway_queue_waiting", "{{upstream}} waiting"),
            ]),
        ],
    })
}

fn dashboard_config_map() -> Result<Value, RenderError> {
    let mut m = meta("clawkeep-dashboard");
    if let Some(l) = m.labels.as_mut() {
        l.insert(DASHBOARD_LABEL.to_string(), "1".to_string());
    }
    let text = serde_json::to_string_pretty(&dashboard()).map_err(|e| RenderError::Serialize {
        what: "the Grafana dashboard".into(),
        message: e.to_string(),
    })? + "\n";
    value(
        "the dashboard's ConfigMap",
        k8s_openapi::api::core::v1::ConfigMap {
            metadata: m,
            data: Some(std::collections::BTreeMap::from([(
                "clawkeep.json".to_string(),
                text,
            )])),
            ..Default::default()
        },
    )
}

/// The monitoring objects of a fleet with a model gateway.
pub fn objects(fleet: &Fleet) -> Result<Vec<Value>, RenderError> {
    Ok(vec![
        pod_monitor()?,
        prometheus_rule(fleet)?,
        dashboard_config_map()?,
    ])
}
