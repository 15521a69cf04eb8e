//! Managed inference backends: an `ollama serve`, `vllm serve` or `llama-server` that
//! clawkeep runs itself as a supervised service, each in a sandbox of its own with only the
//! devices the fleet gives it (agents never get GPU devices), and uses as an upstream once
//! it answers its health check.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Api, UpstreamConfig};

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// `ollama serve` (native API; models from its own store).
    Ollama,
    /// `vllm serve MODEL` (OpenAI-compatible).
    Vllm,
    /// llama.cpp's `llama-server -m MODEL.gguf` (OpenAI-compatible).
    LlamaServer,
}

/// One `[[models.backend]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Name of the service and of the upstream it becomes.
    #[schemars(example = &"llama")]
    pub name: Option<String>,
    /// Which server.
    pub kind: Option<BackendKind>,
    /// Path of its executable.
    #[schemars(example = &"/opt/llama.cpp/llama-server")]
    pub binary: Option<String>,
    /// Model file or directory (llama-server: a .gguf; vLLM: a local model directory;
    /// Ollama: the models directory, OLLAMA_MODELS).
    #[schemars(example = &"/var/lib/models/llama3.1-8b-q4.gguf")]
    pub model: Option<String>,
    /// Model names it serves (the first is also llama-server's --alias and vLLM's
    /// --served-model-name).
    pub models: Option<Vec<String>>,
    /// Port on 127.0.0.1.
    #[schemars(example = 8081)]
    pub port: Option<u16>,
    /// Extra arguments.
    pub args: Option<Vec<String>>,
    /// Extra environment (e.g. CUDA_VISIBLE_DEVICES).
    pub env: Option<BTreeMap<String, String>>,
    /// Requests it runs at once.
    pub concurrency: Option<u32>,
    /// Host device nodes it gets, e.g. `["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"]`
    /// or `["/dev/dri/renderD128"]`. It runs in a sandbox of its own and gets no other device
    /// (agents never get any).
    #[schemars(example = &["/dev/nvidia0", "/dev/nvidiactl"])]
    pub devices: Option<Vec<String>>,
    /// More host files or directories it reads, bound read-only at the same path (for example
    /// the virtualenv a `vllm` script runs from). Its program's directory, its model and the
    /// host's system directories (/usr, /lib…) are bound already.
    #[schemars(example = &["/opt/vllm"])]
    pub read_only: Option<Vec<String>>,
}

/// How to start a backend and how to know it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to the service's.
    pub env: BTreeMap<String, String>,
    /// Readiness URL: 200 once the model is loaded.
    pub health_url: String,
}

impl BackendConfig {
    /// Its port (0 when the fleet gave none, which `check` refuses).
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(0)
    }

    /// Its command line, bound to 127.0.0.1 only.
    pub fn launch(&self) -> Launch {
        let port = self.port().to_string();
        let model = self.model.clone().unwrap_or_default();
        let first = self
            .models
            .iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or_default();
        let mut env = self.env.clone().unwrap_or_default();
        let (mut args, health) = match self.kind.unwrap_or(BackendKind::LlamaServer) {
            BackendKind::LlamaServer => (
                vec![
                    "-m".into(),
                    model,
                    "--alias".into(),
                    first,
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.clone(),
                    "--no-webui".into(),
                ],
                "/health",
            ),
            BackendKind::Vllm => (
                vec![
                    "serve".into(),
                    model,
                    "--served-model-name".into(),
                    first,
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.clone(),
                ],
                "/health",
            ),
            BackendKind::Ollama => {
                env.insert("OLLAMA_HOST".into(), format!("127.0.0.1:{port}"));
                if !model.is_empty() {
                    env.insert("OLLAMA_MODELS".into(), model);
                }
                (vec!["serve".into()], "/api/version")
            }
        };
        args.extend(self.args.iter().flatten().cloned());
        Launch {
            program: self.binary.clone().unwrap_or_default(),
            args,
            env,
            health_url: format!("http://127.0.0.1:{port}{health}"),
        }
    }

    /// The upstream it becomes.
    pub fn upstream(&self) -> UpstreamConfig {
        let port = self.port();
        let (url, api) = match self.kind.unwrap_or(BackendKind::LlamaServer) {
            BackendKind::Ollama => (format!("http://127.0.0.1:{port}"), Api::Ollama),
            _ => (format!("http://127.0.0.1:{port}/v1"), Api::Openai),
        };
        UpstreamConfig {
            name: self.name.clone(),
            url: Some(url),
            api: Some(api),
            models: self.models.clone(),
            concurrency: self.concurrency,
            health: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_bind_loopback() {
        let b = BackendConfig {
            name: Some("llama".into()),
            kind: Some(BackendKind::LlamaServer),
            binary: Some("/opt/llama-server".into()),
            model: Some("/m/tiny.gguf".into()),
            models: Some(vec!["tiny".into()]),
            port: Some(8081),
            args: Some(vec!["-np".into(), "4".into()]),
            ..Default::default()
        };
        let l = b.launch();
        assert_eq!(l.program, "/opt/llama-server");
        assert_eq!(
            l.args.join(" "),
            "-m /m/tiny.gguf --alias tiny --host 127.0.0.1 --port 8081 --no-webui -np 4"
        );
        assert_eq!(l.health_url, "http://127.0.0.1:8081/health");
        assert_eq!(
            b.upstream().url.as_deref(),
            Some("http://127.0.0.1:8081/v1")
        );
        let o = BackendConfig {
            kind: Some(BackendKind::Ollama),
            model: Some("/m".into()),
            port: Some(11435),
            ..b
        };
        let l = o.launch();
        assert_eq!(l.args, ["serve", "-np", "4"], "extra args follow");
        assert_eq!(l.env["OLLAMA_HOST"], "127.0.0.1:11435");
        assert_eq!(l.health_url, "http://127.0.0.1:11435/api/version");
        assert_eq!(o.upstream().api, Some(Api::Ollama));
    }
}
