//! An agent's pod on Kubernetes, run here as the processes a kubelet would start from the
//! rendered StatefulSet itself (its containers' commands, mounts and environment, each
//! container as an unprivileged user): the brain's init step pulls the brain from a real
//! Garage, the sync sidecar pushes changes, the model shim reaches a real `clawkeep gateway`
//! with the agent's credential and gets it billed, the sidecar's last push (made when it is
//! stopped, after the agent) carries what the agent wrote as it stopped, a restart in place
//! re-applies the enforced config, and a new pod elsewhere gets the whole brain back.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../minio/tests/support/mod.rs"]
mod s3;

#[path = "../ollama/tests/support/mod.rs"]
mod llm;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NOBODY: u32 = 65534;

/// What a kubelet gives the pod: a host directory per volume.
struct Kubelet {
    volumes: BTreeMap<String, PathBuf>,
    env_home: PathBuf,
}

impl Kubelet {
    /// `argv` and the environment of container `c`, its mount paths turned into the host
    /// directories of its volumes.
    fn command(&self, c: &serde_json::Value) -> (Vec<String>, Vec<(String, String)>) {
        let mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mut host = self.volumes[m["name"].as_str().unwrap()].clone();
                if let Some(sub) = m["subPath"].as_str() {
                    host = host.join(sub);
                }
                (m["mountPath"].as_str().unwrap().to_string(), host)
            })
            .collect();
        let at = |arg: &str| -> String {
            for (path, host) in &mounts {
                if arg == path {
                    return host.display().to_string();
                }
                if let Some(rest) = arg.strip_prefix(&format!("{path}/")) {
                    return host.join(rest).display().to_string();
                }
                // The directory the runtime makes for mount points (`--knowledge`): laid out
                // here as the host directories' parent.
                let p = Path::new(path);
                if p.parent() == Some(Path::new(arg)) && p.file_name() == host.file_name() {
                    return host.parent().unwrap().display().to_string();
                }
            }
            arg.to_string()
        };
        let argv: Vec<String> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .chain(c["args"].as_array().into_iter().flatten())
            .map(|a| at(a.as_str().unwrap()))
            .collect();
        let mut env = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("HOSTNAME".to_string(), "alpha-0".to_string()),
        ];
        for e in c["env"].as_array().into_iter().flatten() {
            let (k, v) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
            let v = if k == "HOME" {
                self.env_home.display().to_string()
            } else {
                v.to_string()
            };
            env.push((k.to_string(), v));
        }
        (argv, env)
    }

    /// Container `c` started as nobody, its stderr into `log`. The agent container also
    /// gets KNOWLEDGE: where its collection is on this host (no mount namespace puts it at
    /// /knowledge here).
    fn start(&self, c: &serde_json::Value, log: &Path) -> Child {
        let (argv, mut env) = self.command(c);
        env.push((
            "KNOWLEDGE".into(),
            self.volumes["knowledge-0"]
                .join("files")
                .display()
                .to_string(),
        ));
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
        cmd.arg(support::clawkeep())
            .args(&argv[1..])
            .env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        cmd.spawn().unwrap()
    }
}

/// A rendered ConfigMap mounted at `dir`.
fn mount_config_map(dir: &Path, cm: &serde_json::Value) {
    support::kubelet_config_map(dir, cm["data"].as_object().unwrap());
}

/// A Secret's key mounted as the pod's group may read it (root's, mode 0440).
fn mount_secret(dir: &Path, key: &str, value: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join(key);
    std::fs::write(&f, value).unwrap();
    std::os::unix::fs::chown(&f, Some(0), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o440)).unwrap();
}

fn nobodys(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir.to_path_buf()
}

fn wait(child: &mut Child, within: Duration, what: &str) -> std::process::ExitStatus {
    support::wait_for(within, what, || child.try_wait().unwrap())
}

fn term(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rendered_pod_pulls_its_brain_is_billed_through_its_shim_and_pushes_last_after_the_agent_stops(
) {
    let garage = s3::Garage::start().await;
    let llama = llm::LlamaServer::start().await;
    let s = support::Scratch::new("cluster-pod");
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let endpoint = garage.managed.endpoint();
    let fleet = s.dir.join("fleet.toml");
    // The agent writes a note, and one more as it is stopped; it reads the shared
    // collection and adds to it.
    let script = r#"test -s "$HOME/.openclaw/openclaw.json" || exit 3
test "$(readlink "$HOME/knowledge")" = /knowledge || exit 4
cp "$HOME/MEMORY.md" "$HOME/seen.md"
cp "$KNOWLEDGE/guide.md" "$HOME/seen-guide.md"
echo mine > "$KNOWLEDGE/from-alpha.md"
echo one > "$HOME/notes.md"
trap 'echo last > "$HOME/last.md"; exit 0' TERM
while :; do sleep 0.1; done"#;
    std::fs::write(
        &fleet,
        format!(
            r#"
[runtime]
rootfs = "rootfs"
openclaw = "2026.9.6"

[store]
endpoint = "{endpoint}"
credentials = "root.key"
debounce = "1s"
reconcile = "1h"

[models]
upstream = [{{ name = "llama", url = "{}", api = "openai", models = ["tiny-random"] }}]

[cluster]
image = "registry.lab/clawkeep@sha256:{}"
gateway_ip = "127.0.0.1"
store = "{endpoint}"

[[agent]]
name = "alpha"
team = "lab"
command = "/bin/sh"
args = ["-c", '''{script}''']
knowledge = {{ docs = "rw" }}
"#,
            llama.url(),
            "0".repeat(64)
        ),
    )
    .unwrap();

    // The rendering, as `clawkeep render k8s` writes it.
    let f = supervisor::fleet::load_for_cluster(&fleet).unwrap_or_else(|d| panic!("{d}"));
    let opts = supervisor::k8s::Options::of(&f.cluster, Default::default()).unwrap();
    let rendered = supervisor::k8s::render(&f, &opts).unwrap();
    let object = |file: &str| -> serde_json::Value {
        let r = rendered
            .iter()
            .find(|r| r.path == Path::new("clawkeep-lab").join(file))
            .unwrap_or_else(|| panic!("{file} rendered"));
        serde_norway::from_str(&r.yaml).unwrap()
    };
    let set = object("statefulset-alpha.yaml");
    let pod = &set["spec"]["template"]["spec"];
    let init: Vec<&serde_json::Value> = pod["initContainers"].as_array().unwrap().iter().collect();
    let names: Vec<&str> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["brain-pull", "brain-sync", "clawkeep-shim"]);
    let (pull, sync, shim) = (init[0], init[1], init[2]);
    let agent = &pod["containers"][0];

    // The brain in the store before the pod ever ran.
    let bucket = garage.bucket("ck-agent-alpha").await;
    bucket
        .put("MEMORY.md", bytes::Bytes::from_static(b"from the store\n"))
        .await
        .unwrap();
    let docs = garage.bucket("ck-shared-docs").await;
    docs.put("guide.md", bytes::Bytes::from_static(b"shared\n"))
        .await
        .unwrap();

    // The kubelet's side: volumes and the Secrets the operator made.
    let kubelet = |pvc: &Path| {
        let v = |n: &str| (n.to_string(), s.dir.join(n));
        let volumes = BTreeMap::from([
            ("home".to_string(), nobodys(pvc)),
            ("tmp".to_string(), nobodys(&s.dir.join("tmp"))),
            v("agent-config"),
            v("brain-config"),
            v("credential"),
            v("store-key"),
            (
                "knowledge-0".to_string(),
                nobodys(&pvc.with_extension("knowledge").join("docs")),
            ),
        ]);
        Kubelet {
            volumes,
            env_home: pvc.join("home"),
        }
    };
    mount_config_map(
        &s.dir.join("agent-config"),
        &object("configmap-agent-alpha-openclaw.yaml"),
    );
    mount_config_map(
        &s.dir.join("brain-config"),
        &object("configmap-agent-alpha-brain.yaml"),
    );
    let root = &garage.secrets.root;
    mount_secret(
        &s.dir.join("store-key"),
        "key",
        &format!("{}:{}", root.access_key, root.secret_key),
    );
    let credential = "a1".repeat(20);
    mount_secret(&s.dir.join("credential"), "credential", &credential);
    let creds = s.dir.join("gateway-credentials");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("alpha"), &credential).unwrap();
    let state = s.dir.join("gateway-state");
    let mut gw = Command::new(support::clawkeep());
    gw.arg("gateway")
        .arg(&fleet)
        .arg("--credentials")
        .arg(&creds)
        .arg("--ledger")
        .arg(state.join("ledger"))
        .args(["--listen", "127.0.0.1:0"]);
    let (_gw, gw_addr) = support::started(gw, "clawkeep gateway: serving 1 agent on ");

    let pvc = s.dir.join("pvc");
    let k = kubelet(&pvc);
    let logs = s.dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = |n: &str| std::fs::read_to_string(logs.join(n)).unwrap_or_default();

    // 1. The init step: the brain comes down into a new home.
    let mut p = k.start(pull, &logs.join("pull"));
    let st = wait(&mut p, Duration::from_secs(60), "the brain pulled");
    assert!(st.success(), "{}", log("pull"));
    assert_eq!(
        std::fs::read_to_string(pvc.join("home/MEMORY.md")).unwrap(),
        "from the store\n"
    );
    assert!(
        !pvc.join("home/sync-state.json").exists() && pvc.join("sync-state.json").exists(),
        "the sync state is beside the home, out of the agent's reach"
    );
    assert_eq!(
        std::fs::read_to_string(pvc.with_extension("knowledge").join("docs/files/guide.md"))
            .unwrap(),
        "shared\n",
        "the shared collection came down into its volume"
    );

    // 2. The sidecars: the brain's sync, the model shim (pointed at this gateway).
    let mut sidecar = k.start(sync, &logs.join("sync"));
    let (shim_argv, _) = k.command(shim);
    let gateway_arg = shim_argv.iter().position(|a| a == "--gateway").unwrap() + 1;
    assert_eq!(shim_argv[gateway_arg], "http://127.0.0.1:11434");
    let mut shim_cmd = Command::new("setpriv");
    shim_cmd
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(support::clawkeep())
        .args(shim_argv[1..].iter().map(|a| {
            if a == "http://127.0.0.1:11434" {
                format!("http://{gw_addr}")
            } else {
                a.clone()
            }
        }))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear();
    let (_shim, shim_addr) = support::started(shim_cmd, "clawkeep pod shim: serving on ");

    // 3. The agent.
    let mut a = k.start(agent, &logs.join("agent"));
    support::wait_for(Duration::from_secs(30), "the agent's first note", || {
        pvc.join("home/notes.md").exists().then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(pvc.join("home/seen.md")).unwrap(),
        "from the store\n",
        "the agent started on the pulled brain"
    );
    assert_eq!(
        std::fs::read_to_string(pvc.join("home/seen-guide.md")).unwrap(),
        "shared\n"
    );
    let chat = r#"{"model":"tiny-random","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":4}}"#;
    let r = reqwest::Client::new()
        .post(format!("http://{shim_addr}/api/chat"))
        .body(chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Billed to alpha, by the credential its shim holds.
    let spend = || support::spend_by_agent(&state);
    support::wait_for(
        Duration::from_secs(10),
        "alpha's request in the ledger",
        || {
            let v = spend()?;
            let rows = v["rows"].as_array()?;
            (rows.len() == 1 && rows[0]["name"] == "alpha" && rows[0]["requests"] == 1)
                .then_some(())
        },
    );
    // Pushed within seconds of the change.
    let pushed = |name: &'static str| {
        let bucket = bucket.clone();
        async move { s3::newest(&bucket).await.get(name).cloned() }
    };
    let mut up = None;
    for _ in 0..100 {
        up = pushed("notes.md").await;
        if up.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(up.as_deref(), Some(&b"one\n"[..]), "{}", log("sync"));

    // 4. The pod stops: the agent first; once it has exited, the sidecar (as Kubernetes
    // stops native sidecars, after the main containers). What the agent wrote as it stopped
    // is in the store when the sidecar exits, well within the store's debounce.
    term(&a);
    let st = wait(&mut a, Duration::from_secs(10), "the agent stopped");
    assert!(st.success(), "{}", log("agent"));
    assert!(pvc.join("home/last.md").exists());
    term(&sidecar);
    let st = wait(
        &mut sidecar,
        Duration::from_secs(30),
        "the sidecar's last push",
    );
    assert!(st.success(), "{}", log("sync"));
    assert!(
        log("sync").contains("clawkeep pod sync: last push done"),
        "{}",
        log("sync")
    );
    assert_eq!(pushed("last.md").await.as_deref(), Some(&b"last\n"[..]));
    // What it added to the collection went up to the collection's bucket.
    assert_eq!(
        s3::newest(&docs)
            .await
            .get("from-alpha.md")
            .map(|b| b.as_slice()),
        Some(&b"mine\n"[..])
    );

    // 5. A restart in place re-applies the enforced config over what the agent left.
    let enforced = object("configmap-agent-alpha-openclaw.yaml")["data"]["openclaw.json"]
        .as_str()
        .unwrap()
        .to_string();
    let config = pvc.join("home/.openclaw/openclaw.json");
    std::fs::write(&config, r#"{"gateway":{"bind":"lan"}}"#).unwrap();
    let mut again = k.start(agent, &logs.join("agent-again"));
    support::wait_for(Duration::from_secs(30), "the agent again", || {
        (std::fs::read_to_string(&config).ok()? == enforced).then_some(())
    });
    term(&again);
    wait(
        &mut again,
        Duration::from_secs(10),
        "the agent stopped again",
    );

    // 6. A new pod on another node (an empty volume) gets the whole brain back.
    let elsewhere = s.dir.join("pvc-elsewhere");
    let k2 = kubelet(&elsewhere);
    let mut p = k2.start(pull, &logs.join("pull-elsewhere"));
    let st = wait(
        &mut p,
        Duration::from_secs(60),
        "the brain pulled elsewhere",
    );
    assert!(st.success(), "{}", log("pull-elsewhere"));
    assert_eq!(
        std::fs::read_to_string(
            elsewhere
                .with_extension("knowledge")
                .join("docs/files/from-alpha.md")
        )
        .unwrap(),
        "mine\n"
    );
    for (file, content) in [
        ("MEMORY.md", "from the store\n"),
        ("notes.md", "one\n"),
        ("last.md", "last\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("home").join(file)).unwrap(),
            content,
            "{file}"
        );
    }
}
