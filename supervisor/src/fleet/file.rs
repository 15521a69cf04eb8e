//! The fleet file as written by the user: serde + JSON Schema types, every field optional
//! where a default or `[defaults]` can supply it. `validate` turns it into a [`super::Fleet`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Top level of `fleet.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "clawkeep fleet file")]
pub struct FleetFile {
    /// The node this fleet runs on.
    #[serde(default)]
    pub node: NodeFile,
    /// The read-only runtime every agent sees as its root filesystem.
    #[serde(default)]
    pub runtime: RuntimeFile,
    /// Settings every agent inherits unless it overrides them.
    #[serde(default)]
    pub defaults: AgentSettings,
    /// The agents: each one runs in its own sandbox.
    #[serde(default)]
    pub agent: Vec<AgentFile>,
    /// The model gateway: local upstreams agents reach through clawkeep only.
    pub models: Option<clawkeep_gateway::config::GatewayConfig>,
    /// The knowledge store: where agents' brains and shared collections live.
    pub store: Option<clawkeep_store::config::StoreConfig>,
    /// Teams and their budgets, e.g. `[teams.support] budget = { tokens_per_day = 5000000 }`.
    pub teams: Option<BTreeMap<String, TeamFile>>,
    /// Supervised processes that are not agents (store, inference server, ...), run on the host.
    #[serde(default)]
    pub service: Vec<ServiceFile>,
    /// The Kubernetes cluster `clawkeep render k8s` renders the fleet for (a node ignores it).
    pub cluster: Option<ClusterFile>,
}

/// `[cluster]`: what `clawkeep render k8s` needs to know of the cluster; the command's flags
/// override it. Every image is pinned by digest, and every address is an IP address: the
/// pods have no DNS.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The image every clawkeep container runs (clawkeep and the agents' root filesystem),
    /// by digest.
    #[schemars(example = &"registry.lab/clawkeep@sha256:4f1c...", pattern(r"^[^\s@]+@sha256:[0-9a-fA-F]{64}$"))]
    pub image: Option<String>,
    /// The OpenClaw runtime as an image (the OCI layout `clawkeep image build` writes in
    /// `oci/`, pushed), by digest: mounted read-only at /opt/openclaw as an image volume.
    /// Without it the runtime must be in `image`.
    #[schemars(example = &"registry.lab/openclaw@sha256:9b2e...", pattern(r"^[^\s@]+@sha256:[0-9a-fA-F]{64}$"))]
    pub runtime_image: Option<String>,
    /// The model gateway's Service address, an unused one in the cluster's Service range
    /// (needed with `[models]`): agents' shims reach it without DNS.
    #[schemars(example = &"10.96.0.20")]
    pub gateway_ip: Option<String>,
    /// The knowledge store's S3 endpoint in the cluster, by address (needed with `[store]`):
    /// each agent's brain sidecar syncs its home with its bucket there.
    #[schemars(example = &"http://10.96.0.40:3900")]
    pub store: Option<String>,
    /// Run every pod in a user namespace (`hostUsers: false`).
    pub user_namespaces: Option<bool>,
    /// The pods' RuntimeClass (gVisor's, Kata's, ...).
    #[schemars(example = &"gvisor")]
    pub runtime_class: Option<String>,
    /// The namespace Prometheus runs in: renders a PodMonitor and a PrometheusRule (the
    /// Prometheus operator's kinds: its CRDs must be installed) and the Grafana dashboard
    /// as a ConfigMap for Grafana's sidecar, and lets Prometheus scrape the gateway.
    #[schemars(example = &"monitoring")]
    pub monitoring: Option<String>,
    /// The cluster's network policy flavour: "kubernetes" (the default: NetworkPolicies,
    /// egress by address only) or "cilium" (also CiliumNetworkPolicies, so `egress` may
    /// name hosts: each agent may ask the cluster's DNS for its listed names only, and reach
    /// what they resolve to on the listed ports).
    #[schemars(example = &"cilium")]
    pub network: Option<NetworkFlavour>,
    /// Run each agent container under clawkeep's own seccomp filter (the one a node puts on
    /// every agent) as a Localhost profile at this path under the kubelet's seccomp
    /// directory; `render` writes the profile for the nodes. Default: the runtime's.
    #[schemars(example = &"clawkeep/agent.json")]
    pub seccomp_profile: Option<String>,
    /// How each managed `[[models.backend]]` runs in the cluster, by its name: its image,
    /// its Service address and where its model is. Every managed backend needs one.
    pub backends: Option<BTreeMap<String, ClusterBackendFile>>,
}

/// How a cluster enforces network policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkFlavour {
    /// Kubernetes NetworkPolicies: addresses only.
    #[default]
    Kubernetes,
    /// Cilium: NetworkPolicies, and CiliumNetworkPolicies for egress to names.
    Cilium,
}

/// `[cluster.backends.NAME]`: a managed model server as a Deployment in the cluster.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterBackendFile {
    /// The model server's image, by digest.
    #[schemars(example = &"ghcr.io/ggml-org/llama.cpp@sha256:5b7e...", pattern(r"^[^\s@]+@sha256:[0-9a-fA-F]{64}$"))]
    pub image: Option<String>,
    /// Its executable's path in the image (default: the backend's `binary`).
    #[schemars(example = &"/app/llama-server")]
    pub binary: Option<String>,
    /// Its Service address, an unused one in the Service range: the gateway reaches it
    /// without DNS.
    #[schemars(example = &"10.96.0.31")]
    pub address: Option<String>,
    /// A PersistentVolumeClaim in clawkeep-system holding the model, mounted read-only at
    /// the model's directory (a .gguf file's directory; vLLM's and Ollama's model directory).
    #[schemars(example = &"models")]
    pub models_claim: Option<String>,
    /// CPU cores (default 1).
    #[schemars(example = 4.0)]
    pub cpu: Option<f64>,
    /// Memory limit (default "4GiB").
    #[schemars(example = &"16GiB")]
    pub memory: Option<String>,
    /// NVIDIA GPUs (`nvidia.com/gpu`); default: the backend's `/dev/nvidiaN` devices.
    #[schemars(example = 1)]
    pub gpus: Option<u32>,
}

/// `[node]`: where and how the supervisor keeps its state.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Node name, shown by `clawkeep ps`; defaults to the host name.
    #[schemars(example = &"node-1")]
    pub name: Option<String>,
    /// Directory for sockets, logs, bundles and agent homes (default `/var/lib/clawkeep`).
    #[schemars(example = &"/var/lib/clawkeep")]
    pub state_dir: Option<String>,
    /// Parent cgroup, relative to each hierarchy root, under which every process gets its own
    /// cgroup (default `clawkeep`).
    #[schemars(example = &"clawkeep")]
    pub cgroup: Option<String>,
    /// First host uid/gid of the agents' id ranges: the N-th agent's ids 0..65536 map onto
    /// host ids `uid_base + N*65536` (default 1000000000).
    #[schemars(example = 1_000_000_000)]
    pub uid_base: Option<u32>,
    /// A host group whose members may use the control socket (`clawkeep ps`, `logs`, `stop`,
    /// ...) besides root: the socket is then root:GROUP 0660 and every caller's groups are
    /// checked. Without it only root may (the socket is 0600).
    #[schemars(example = &"clawkeep")]
    pub control_group: Option<String>,
}

/// `[runtime]`: the agent runtime.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    /// Directory holding the root filesystem every agent runs in, read-only (relative paths
    /// are relative to the fleet file).
    #[schemars(example = &"rootfs")]
    pub rootfs: Option<String>,
    /// Exact OpenClaw version every agent runs: an installed runtime (`clawkeep runtime
    /// install`) with this version is mounted read-only at /opt/openclaw in each sandbox, and
    /// agents without a command run its gateway.
    #[schemars(example = &"2026.9.6")]
    pub openclaw: Option<String>,
    /// Node version the runtime must carry: a major ("24") or an exact version ("24.21.0").
    #[schemars(example = &"24")]
    pub node: Option<String>,
    /// Directory of installed runtimes (default /var/lib/clawkeep/runtimes, where `clawkeep
    /// runtime install` puts them).
    #[schemars(example = &"/var/lib/clawkeep/runtimes")]
    pub runtimes: Option<String>,
}

/// Restart policy of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Restart whenever the process exits.
    Always,
    /// Restart only when it exits with a non-zero code, a signal or an OOM kill.
    OnFailure,
    /// Never restart.
    Never,
}

/// A size: an integer number of bytes or a string such as `"512MiB"` or `"2GiB"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SizeFile {
    /// Bytes.
    Bytes(u64),
    /// A number with a unit, any case: B, KiB, MiB, GiB, TiB (or Ki, Mi, Gi, Ti, or K, M, G,
    /// T), powers of 1024; KB, MB, GB, TB, powers of 1000.
    Text(String),
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffFile {
    /// First delay, doubled after each failure (default `"1s"`).
    #[schemars(example = &"1s")]
    pub initial: Option<String>,
    /// Cap on the delay (default `"60s"`).
    #[schemars(example = &"60s")]
    pub max: Option<String>,
}

/// When repeated failures put a process into the crash-loop state.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashLoopFile {
    /// Failures within `window` that make a crash loop (default 5).
    #[schemars(example = 5)]
    pub failures: Option<u32>,
    /// Sliding window (default `"60s"`).
    #[schemars(example = &"60s")]
    pub window: Option<String>,
    /// How long a crash-looping process is held before one more try (default `"5m"`).
    #[schemars(example = &"5m")]
    pub hold: Option<String>,
}

/// Log capture of a process's stdout and stderr.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// Rotate the log when it reaches this size (default `"10MiB"`).
    #[schemars(example = &"10MiB")]
    pub max_size: Option<SizeFile>,
    /// Rotated files to keep besides the current one (default 3).
    #[schemars(example = 3)]
    pub keep: Option<u32>,
}

/// A health check: exactly one of `command` or `http`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// Command run on the host (argv); healthy when it exits 0.
    #[schemars(example = ["curl", "-fsS", "http://127.0.0.1:9000/minio/health/live"])]
    pub command: Option<Vec<String>>,
    /// `http://` URL on the host's loopback; healthy on a 2xx or 3xx answer.
    #[schemars(example = &"http://127.0.0.1:11434/")]
    pub http: Option<String>,
    /// Time between checks (default `"10s"`).
    #[schemars(example = &"10s")]
    pub interval: Option<String>,
    /// Time a check may take (default `"5s"`).
    #[schemars(example = &"5s")]
    pub timeout: Option<String>,
    /// Consecutive failures before the process is unhealthy (default 3).
    #[schemars(example = 3)]
    pub retries: Option<u32>,
    /// Grace after start during which failures do not count (default `"0s"`).
    #[schemars(example = &"30s")]
    pub start_period: Option<String>,
}

/// An example `env` table for the schema (and for hints).
fn example_env() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("LOG_LEVEL", "info")])
}

/// Settings shared by `[defaults]` and each `[[agent]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Program run inside the sandbox (a path inside the runtime).
    #[schemars(example = &"/usr/local/bin/openclaw")]
    pub command: Option<String>,
    /// Its arguments.
    #[schemars(example = ["gateway", "--verbose"])]
    pub args: Option<Vec<String>>,
    /// Environment variables (besides HOME, PATH and HOSTNAME, which clawkeep sets); an
    /// agent's variables are added to those of `[defaults]`.
    #[schemars(example = example_env())]
    pub env: Option<BTreeMap<String, String>>,
    /// CPU cores the agent may use (e.g. 0.5, 2).
    #[schemars(example = 0.5)]
    pub cpu: Option<f64>,
    /// Memory limit, at least 16MiB.
    #[schemars(example = &"2GiB")]
    pub memory: Option<SizeFile>,
    /// Maximum number of processes and threads.
    #[schemars(example = 512)]
    pub pids: Option<u64>,
    /// Maximum open files (RLIMIT_NOFILE).
    #[schemars(example = 4096)]
    pub nofile: Option<u64>,
    /// Size of the private /tmp.
    #[schemars(example = &"256MiB")]
    pub tmp_size: Option<SizeFile>,
    /// Disk space the agent's home may take, at least 1MiB (no limit when absent): a
    /// project quota the kernel enforces, so the state dir must be on ext4 or xfs with
    /// project quotas on (`clawkeep check` says when it is not); writes past it fail with
    /// "Disk quota exceeded".
    #[schemars(example = &"2GiB")]
    pub disk: Option<SizeFile>,
    /// Restart policy (default `always`).
    #[schemars(example = &"on-failure")]
    pub restart: Option<RestartMode>,
    /// Backoff between restarts.
    pub backoff: Option<BackoffFile>,
    /// Crash-loop detection.
    pub crash_loop: Option<CrashLoopFile>,
    /// Time between SIGTERM and killing the whole cgroup on stop (default `"10s"`).
    #[schemars(example = &"10s")]
    pub stop_grace: Option<String>,
    /// Log capture.
    pub log: Option<LogFile>,
    /// Team the agent belongs to (used for grouping and, later, budgets).
    #[schemars(example = &"research")]
    pub team: Option<String>,
    /// Model used when a request names none (a model or alias from `[models]`).
    #[schemars(example = &"default")]
    pub model: Option<String>,
    /// Models the agent may use (all of `[models]` when absent).
    pub models: Option<Vec<String>>,
    /// Daily token budget of the agent.
    pub budget: Option<clawkeep_gateway::config::BudgetConfig>,
    /// Model requests the agent may have in flight at once (default 4).
    #[schemars(example = 4)]
    pub max_concurrent: Option<u32>,
    /// An HTTP check of the agent from inside its sandbox, e.g.
    /// `health = { http = "http://127.0.0.1:18789/readyz" }` (the agent's own loopback);
    /// failing `retries` times in a row after `start_period` restarts the agent.
    pub health: Option<HealthFile>,
    /// OpenClaw settings merged over clawkeep's template (`[defaults]` first, then the
    /// agent's), e.g. `openclaw = { agents = { defaults = { timeoutSeconds = 600 } } }`. The
    /// gateway's mode, bind, port and auth, update checks, telemetry, catalog refresh and the
    /// `clawkeep` model provider are clawkeep's and cannot be set here.
    pub openclaw: Option<serde_json::Value>,
}

/// One `[[agent]]`: a sandboxed agent; its settings override `[defaults]` one by one.
// No serde `deny_unknown_fields`: serde cannot combine it with `flatten`. The schema still
// says `additionalProperties: false` (the schemars attribute), and the schema check reports
// unknown keys from it before serde runs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AgentFile {
    /// Agent name: a DNS label (lowercase letters, digits, '-'), also its hostname.
    #[schemars(example = &"research")]
    pub name: Option<String>,
    /// Markdown file copied to the agent's home as SOUL.md on first start.
    #[schemars(example = &"souls/research.md")]
    pub soul: Option<String>,
    /// More files for an OpenClaw agent's workspace on first start, by name: "AGENTS.md",
    /// "USER.md", "IDENTITY.md" (afterwards the brain from the store wins).
    #[schemars(example = &serde_json::json!({"USER.md": "lab/USER.md"}))]
    pub workspace: Option<BTreeMap<String, String>>,
    /// Port on the host's loopback forwarded to 127.0.0.1:18789 inside the agent.
    #[schemars(example = 18789)]
    pub gateway_port: Option<u16>,
    /// Services this agent waits for (running, and healthy if they have a check).
    #[schemars(example = ["ollama"])]
    pub depends_on: Option<Vec<String>>,
    /// Shared collections this agent sees under `knowledge/<name>/`: "ro" (mounted read-only,
    /// and its store key cannot write) or "rw".
    #[schemars(example = &serde_json::json!({"docs": "ro"}))]
    pub knowledge: Option<BTreeMap<String, clawkeep_store::grants::Access>>,
    /// Secrets this agent gets, by name (set with `clawkeep secrets set AGENT NAME`, value
    /// on stdin); names are environment variable names: letters, digits and '_'.
    #[schemars(example = ["matrix_token"])]
    pub secrets: Option<Vec<String>>,
    /// How the secrets reach the agent: "files" (default; one 0600 file per secret on a
    /// read-only tmpfs at /run/secrets) or "env" (environment variables of its process).
    #[schemars(example = &"files")]
    pub secrets_as: Option<super::secrets::SecretsAs>,
    /// Destinations the agent may reach, as "host:port", through an HTTPS (CONNECT) proxy
    /// clawkeep runs inside its sandbox (HTTPS_PROXY points at it). No list, no egress.
    #[schemars(example = ["matrix.internal:8448"])]
    pub egress: Option<Vec<String>>,
    /// Settings overriding `[defaults]`.
    #[serde(flatten)]
    pub settings: AgentSettings,
}

/// One `[[service]]`: a supervised process on the host, outside any sandbox.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Service name: a DNS label.
    #[schemars(example = &"minio")]
    pub name: Option<String>,
    /// Program: an absolute path, or a name looked up in PATH.
    #[schemars(example = &"minio")]
    pub command: Option<String>,
    /// Its arguments.
    #[schemars(example = ["server", "/srv/minio"])]
    pub args: Option<Vec<String>>,
    /// Environment variables added to the supervisor's PATH (the rest of the
    /// supervisor's environment is not passed on).
    #[schemars(example = example_env())]
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory (default: the fleet file's directory).
    #[schemars(example = &"/srv/minio")]
    pub cwd: Option<String>,
    /// Restart policy (default `always`).
    #[schemars(example = &"on-failure")]
    pub restart: Option<RestartMode>,
    /// Backoff between restarts.
    pub backoff: Option<BackoffFile>,
    /// Crash-loop detection.
    pub crash_loop: Option<CrashLoopFile>,
    /// Services started before this one.
    #[schemars(example = ["minio"])]
    pub depends_on: Option<Vec<String>>,
    /// Health check.
    pub health: Option<HealthFile>,
    /// Host ports this service listens on (checked for collisions).
    #[schemars(example = [9000, 9001])]
    pub ports: Option<Vec<u16>>,
    /// Time between SIGTERM and killing the whole cgroup on stop (default `"10s"`).
    #[schemars(example = &"10s")]
    pub stop_grace: Option<String>,
    /// Log capture.
    pub log: Option<LogFile>,
}

/// `[teams.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamFile {
    /// Daily token budget shared by the team's agents.
    pub budget: Option<clawkeep_gateway::config::BudgetConfig>,
}
