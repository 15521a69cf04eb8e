//! `clawkeep render k8s --format helm`: the rendering as a Helm chart whose `values.yaml` is
//! the fleet (its `[cluster]` as rendered) and whose `values.schema.json` is the fleet
//! file's schema (`clawkeep schema`). With its default values the chart renders each object
//! byte for byte as the plain manifests. `cluster.image` and `cluster.runtime_image` are
//! template values (`helm upgrade --set cluster.image=...@sha256:...` rolls a new image);
//! any other change to the values would need the renderer itself, so the chart refuses it
//! with a message that says to render again, rather than ignore it.

use std::path::PathBuf;

use super::{render, render_hashed, to_yaml, Options, RenderError, Rendered};
use crate::fleet::Fleet;

/// The chart's name.
pub const CHART: &str = "clawkeep-fleet";
/// Where the image placeholders stand while the templates are made: names that no fleet
/// can give (`.invalid` is reserved) and that YAML writes as they are.
const IMAGE_MARK: &str = "clawkeep-chart.invalid/image@sha256:";
const RUNTIME_MARK: &str = "clawkeep-chart.invalid/runtime@sha256:";
/// The values a template takes, with the placeholder each stands in for.
fn templated(opts: &Options) -> Vec<(String, &'static str, &'static str)> {
    let mut out = vec![(
        format!("{IMAGE_MARK}{}", "c".repeat(64)),
        "{{ .Values.cluster.image }}",
        "image",
    )];
    if opts.runtime_image.is_some() {
        out.push((
            format!("{RUNTIME_MARK}{}", "d".repeat(64)),
            "{{ .Values.cluster.runtime_image }}",
            "runtime_image",
        ));
    }
    out
}

/// The file of the chart holding the values it was rendered from, but the templated ones.
const RENDERED_FROM: &str = "fleet.json";

/// Text Helm must print as it is: `{{` starts an action, so it is written as one that
/// prints `{{` (a soul or an OpenClaw setting may hold it).
fn literal(text: &str) -> String {
    text.replace("{{", "{{\"{{\"}}")
}

/// The fleet file `text` as the chart's values: its tables as they are, `[cluster]` as the
/// rendering used it.
fn values(text: &str, opts: &Options) -> Result<serde_json::Value, RenderError> {
    let file: toml::Value = toml::from_str(text).map_err(|e| RenderError::Serialize {
        what: "the fleet file as values".into(),
        message: e.to_string(),
    })?;
    let mut v = serde_json::to_value(file).map_err(|e| RenderError::Serialize {
        what: "the fleet file as values".into(),
        message: e.to_string(),
    })?;
    let mut cluster = serde_json::Map::new();
    cluster.insert("image".into(), opts.image.clone().into());
    if let Some(r) = &opts.runtime_image {
        cluster.insert("runtime_image".into(), r.clone().into());
    }
    if let Some(ip) = opts.gateway_ip {
        cluster.insert("gateway_ip".into(), ip.to_string().into());
    }
    if let Some(s) = &opts.store {
        cluster.insert("store".into(), s.clone().into());
    }
    if opts.user_namespaces {
        cluster.insert("user_namespaces".into(), true.into());
    }
    if let Some(rc) = &opts.runtime_class {
        cluster.insert("runtime_class".into(), rc.clone().into());
    }
    if let Some(ns) = &opts.monitoring {
        cluster.insert("monitoring".into(), ns.clone().into());
    }
    if opts.network != crate::fleet::NetworkFlavour::Kubernetes {
        cluster.insert(
            "network".into(),
            serde_json::to_value(opts.network).unwrap_or_default(),
        );
    }
    if let Some(p) = &opts.seccomp_profile {
        cluster.insert("seccomp_profile".into(), p.clone().into());
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("cluster".into(), cluster.into());
    }
    Ok(v)
}

/// The template that refuses values the templates cannot follow: everything but the
/// templated `cluster` values must be what the chart was rendered from.
fn guard(opts: &Options) -> String {
    let unset: String = templated(opts)
        .iter()
        .map(|(_, _, key)| format!("{{{{- $_ := unset $cluster {key:?} }}}}\n"))
        .collect();
    format!(
        r#"{{{{- /* The chart renders the fleet it was made from; only the images may change. */ -}}}}
{{{{- /* Through JSON: the values' own map type is not a plain map's. */ -}}}}
{{{{- $given := .Values | toJson | fromJson }}}}
{{{{- $cluster := get $given "cluster" }}}}
{{{{- if kindIs "map" $cluster }}}}
{unset}{{{{- end }}}}
{{{{- if not (deepEqual $given (.Files.Get "{RENDERED_FROM}" | fromJson)) }}}}
{{{{- fail "these values change the fleet itself, which this chart cannot render: only cluster.image and cluster.runtime_image may be set here. Change the fleet file and run `clawkeep render k8s FLEET --format helm --out DIR` again" }}}}
{{{{- end }}}}
"#
    )
}

/// The chart's files: `Chart.yaml`, `values.yaml` (the fleet), `values.schema.json`, the
/// values it was rendered from, and a template per object (`templates/<namespace>/...`).
pub fn chart(
    fleet: &Fleet,
    fleet_text: &str,
    opts: &Options,
) -> Result<Vec<Rendered>, RenderError> {
    let plain = render(fleet, opts)?;
    let hash = super::fleet_hash(&plain).unwrap_or_default();
    let marks = templated(opts);
    let marked = Options {
        image: marks[0].0.clone(),
        runtime_image: marks.get(1).map(|m| m.0.clone()),
        ..opts.clone()
    };
    let with_marks = render_hashed(fleet, &marked, Some(&hash))?;
    let mut out = Vec::new();
    for (p, m) in plain.iter().zip(&with_marks) {
        let mut text = literal(&m.yaml);
        let mut back = m.yaml.clone();
        for (mark, expr, key) in &marks {
            text = text.replace(mark.as_str(), expr);
            let value = if *key == "image" {
                &opts.image
            } else {
                opts.runtime_image.as_ref().unwrap_or(&opts.image)
            };
            back = back.replace(mark.as_str(), value);
        }
        // The templates give back the manifests: nothing but the images was marked.
        if p.path != m.path || back != p.yaml {
            return Err(RenderError::Serialize {
                what: format!("the chart's template {}", m.path.display()),
                message: "it does not render to the plain manifest (a bug: please report it)"
                    .into(),
            });
        }
        out.push(Rendered {
            path: PathBuf::from("templates").join(&p.path),
            yaml: text,
        });
    }
    let values = values(fleet_text, opts)?;
    let mut rendered_from = values.clone();
    if let Some(c) = rendered_from
        .get_mut("cluster")
        .and_then(|c| c.as_object_mut())
    {
        for (_, _, key) in &marks {
            c.remove(*key);
        }
    }
    let json = |v: &serde_json::Value, what: &str| {
        serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .map_err(|e| RenderError::Serialize {
                what: what.to_string(),
                message: e.to_string(),
            })
    };
    let version = env!("CARGO_PKG_VERSION");
    // The name the file gives, never the host's (the same fleet gives the same chart).
    let named = values
        .pointer("/node/name")
        .and_then(|n| n.as_str())
        .map(|n| format!(" {n:?}"))
        .unwrap_or_default();
    let chart_yaml = to_yaml(&serde_json::json!({
        "apiVersion": "v2",
        "name": CHART,
        "description": format!("The clawkeep fleet{named} on Kubernetes (clawkeep render k8s --format helm)"),
        "type": "application",
        "version": version,
        "appVersion": version,
    }))?;
    let values_yaml = format!(
        "# The fleet this chart was rendered from, with the [cluster] it was rendered for.\n\
         # cluster.image and cluster.runtime_image may be changed here or with --set; any other\n\
         # change needs a new rendering (clawkeep render k8s FLEET --format helm), and the chart\n\
         # says so rather than ignore it.\n{}",
        to_yaml(&values)?
    );
    out.extend([
        Rendered {
            path: "Chart.yaml".into(),
            yaml: chart_yaml,
        },
        Rendered {
            path: "values.yaml".into(),
            yaml: values_yaml,
        },
        Rendered {
            path: "values.schema.json".into(),
            yaml: json(&crate::fleet::json_schema(), "the values' schema")?,
        },
        Rendered {
            path: RENDERED_FROM.into(),
            yaml: json(&rendered_from, "the values rendered from")?,
        },
        Rendered {
            path: "templates/fleet-check.yaml".into(),
            yaml: guard(opts),
        },
    ]);
    Ok(out)
}
