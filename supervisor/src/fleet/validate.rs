//! From text to a [`Fleet`], collecting every problem: TOML syntax, then the schema (unknown
//! keys, types), then serde, then the meaning (names, paths, limits, dependencies, ports).

use std::path::Path;

use super::diag::Diagnostic;
use super::file::FleetFile;
use super::resolve::Resolver;
use super::spans::{Seg, Spans};
use super::{schema_check, Diagnostics, Fleet};

/// Parse and validate fleet text. `file` is the fleet file as the user named it (used in
/// messages; its parent is how relative paths are shown), `base_dir` the absolute directory
/// relative paths start from. The fleet's `path` is `base_dir` joined with `file`'s name.
pub fn parse(file: &str, text: &str, base_dir: &Path) -> Result<Fleet, Diagnostics> {
    parse_in(file, text, base_dir, None, Mode::ThisHost)
}

/// [`load`] for a fleet a node image will carry, checked on the machine that builds it:
/// everything `check` looks at, but not this machine's state dir (whether it enforces `disk`
/// limits): the node's is the image's root filesystem.
pub fn load_for_image(path: &Path) -> Result<Fleet, Diagnostics> {
    let (file, text, base_dir) = read(path)?;
    parse_in(&file, &text, &base_dir, None, Mode::Elsewhere)
}

/// [`load`] for a fleet rendered onto Kubernetes: everything `check` looks at but what only a
/// node holds (its rootfs, installed runtime, programs, models, devices and state dir),
/// which a cluster gets from images and volumes. Souls and workspace files are still read.
pub fn load_for_cluster(path: &Path) -> Result<Fleet, Diagnostics> {
    let (file, text, base_dir) = read(path)?;
    parse_in(&file, &text, &base_dir, None, Mode::Cluster)
}

/// [`load_for_cluster`] for the cluster's model gateway, whose pod has the fleet file alone:
/// the agents' souls and workspace files are not read.
pub fn load_for_cluster_gateway(path: &Path) -> Result<Fleet, Diagnostics> {
    let (file, text, base_dir) = read(path)?;
    parse_in(&file, &text, &base_dir, None, Mode::ClusterGateway)
}

/// Where the fleet will run, which decides what of this host is looked at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Here: everything.
    ThisHost,
    /// On a node built here (an image): not this host's state dir.
    Elsewhere,
    /// On a Kubernetes cluster: no node files at all.
    Cluster,
    /// The cluster's model gateway: not the agents' files either.
    ClusterGateway,
}

/// Check the fleet file of a node image as the node will: `fleet` is its path on the node
/// (like /etc/clawkeep/fleet.toml), `root` the image's staged root filesystem. Relative
/// paths start at the fleet's directory on the node, absolute ones and PATH lookups are
/// inside `root`. Symlinks with absolute targets inside `root` are followed on this
/// machine, so point them with relative targets.
pub fn load_in_root(root: &Path, fleet: &Path) -> Result<Fleet, Diagnostics> {
    let file = fleet.display().to_string();
    let on_host = root.join(fleet.strip_prefix("/").unwrap_or(fleet));
    let text = std::fs::read_to_string(&on_host).map_err(|e| {
        Diagnostics::new(
            file.clone(),
            vec![Diagnostic::new(
                0,
                0,
                format!(
                    "cannot read {file} in the image ({}): {e}",
                    on_host.display()
                ),
                Some("the image build puts the fleet there".to_string()),
            )],
        )
    })?;
    let base_dir = on_host.parent().unwrap_or(root).to_path_buf();
    parse_in(&file, &text, &base_dir, Some(root), Mode::Elsewhere)
}

fn parse_in(
    file: &str,
    text: &str,
    base_dir: &Path,
    root: Option<&Path>,
    mode: Mode,
) -> Result<Fleet, Diagnostics> {
    let (doc, fleet_file, schema_problems) = parse_file(file, text)?;
    let spans = Spans::new(text, doc.as_table());
    let shown_dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let fleet_path = base_dir.join(Path::new(file).file_name().unwrap_or_default());
    let mut resolver = Resolver::new(&spans, base_dir, shown_dir);
    resolver = match mode {
        Mode::ThisHost => resolver,
        Mode::Elsewhere => resolver.elsewhere(),
        Mode::Cluster => resolver.for_cluster(),
        Mode::ClusterGateway => resolver.for_cluster_gateway(),
    };
    let resolved = match root {
        Some(root) => resolver.in_root(root),
        None => resolver,
    }
    .resolve(&fleet_file, fleet_path);
    if schema_problems.is_empty() {
        return resolved.map_err(|items| Diagnostics::new(file, items));
    }
    // Both kinds at once. What the meaning check says of a key the schema check refused
    // (and took out) is not said again: a message on that key's line, or on its table's,
    // that names the key.
    let taken_out: Vec<(Vec<usize>, String)> = schema_problems
        .iter()
        .filter_map(|(d, path)| {
            let Some(Seg::Key(key)) = path.last() else {
                return None;
            };
            let parent = &path[..path.len() - 1];
            let lines = vec![
                d.line,
                spans.value_pos(parent).line,
                spans.key_pos(parent).line,
            ];
            Some((lines, key.clone()))
        })
        .collect();
    let said_already = |d: &Diagnostic| {
        taken_out.iter().any(|(lines, key)| {
            lines.contains(&d.line)
                && d.message
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == key)
        })
    };
    let mut items: Vec<Diagnostic> = schema_problems.into_iter().map(|(d, _)| d).collect();
    if let Err(meaning) = resolved {
        items.extend(meaning.into_iter().filter(|d| !said_already(d)));
    }
    Err(Diagnostics::new(file, items))
}

/// Remove the key at `path` under `table` (an element of an array goes with its whole
/// array: removing it would move the ones after it), if it is there.
fn remove_path(table: &mut dyn toml_edit::TableLike, path: &[Seg]) {
    use toml_edit::{Item, Value};
    let (Some(Seg::Key(k)), rest) = (path.first(), path.get(1..).unwrap_or_default()) else {
        return;
    };
    match rest {
        [] | [Seg::Index(_)] => {
            table.remove(k);
        }
        [Seg::Index(i), inner @ ..] => match table.get_mut(k) {
            Some(Item::ArrayOfTables(a)) => {
                if let Some(t) = a.get_mut(*i) {
                    remove_path(t, inner);
                }
            }
            Some(Item::Value(Value::Array(a))) => {
                if let Some(t) = a.get_mut(*i).and_then(Value::as_inline_table_mut) {
                    remove_path(t, inner);
                }
            }
            _ => {}
        },
        inner => {
            if let Some(t) = table.get_mut(k).and_then(Item::as_table_like_mut) {
                remove_path(t, inner);
            }
        }
    }
}

/// `text` without the keys at `paths`: what is left of a file once the keys the schema
/// check refused are taken out.
fn without(text: &str, paths: &[Vec<Seg>]) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().ok()?;
    for path in paths {
        remove_path(doc.as_table_mut(), path);
    }
    Some(doc.to_string())
}

/// Syntax, schema and serde: the file as written, before its meaning is checked. Schema
/// problems do not stop there: the keys they are about are taken out and the rest is read,
/// so that its meaning is checked too (every problem in one pass); they come back third,
/// each with the path of its key.
#[allow(clippy::type_complexity)] // The document, what it says, and what it says wrong.
fn parse_file<'t>(
    file: &str,
    text: &'t str,
) -> Result<
    (
        toml_edit::Document<&'t str>,
        FleetFile,
        Vec<(Diagnostic, Vec<Seg>)>,
    ),
    Diagnostics,
> {
    let fail = |items: Vec<Diagnostic>| Diagnostics::new(file, items);
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let empty = toml_edit::Table::new();
        let spans = Spans::new(text, &empty);
        let span = e.span().unwrap_or_default();
        let pos = spans.pos(span.start);
        let reason = e.message().trim_end();
        let (message, hint) = match text.get(span) {
            Some(key) if reason == "duplicate key" => (
                format!("invalid TOML: duplicate key {:?}", key.trim()),
                "a key may appear only once in a table; remove or rename one",
            ),
            _ => (
                format!("invalid TOML: {reason}"),
                "fix the TOML syntax here; nothing else was checked",
            ),
        };
        fail(vec![Diagnostic::new(
            pos.line,
            pos.col,
            message,
            Some(hint.to_string()),
        )])
    })?;
    let spans = Spans::new(text, doc.as_table());

    let problems = schema_check::check(&spans, &super::json_schema());
    if !problems.is_empty() {
        let paths: Vec<Vec<Seg>> = problems.iter().map(|(_, p)| p.clone()).collect();
        let rest = without(text, &paths).and_then(|t| toml::from_str::<FleetFile>(&t).ok());
        return match rest {
            Some(fleet_file) => Ok((doc, fleet_file, problems)),
            None => Err(fail(problems.into_iter().map(|(d, _)| d).collect())),
        };
    }

    let fleet_file: FleetFile = toml::from_str(text).map_err(|e| {
        let pos = spans.pos(e.span().map_or(0, |s| s.start));
        fail(vec![Diagnostic::new(
            pos.line,
            pos.col,
            e.message().trim_end().to_string(),
            Some("see `clawkeep schema` for what the fleet file may hold".to_string()),
        )])
    })?;
    Ok((doc, fleet_file, Vec::new()))
}

/// Read, parse and validate a fleet file; relative paths in it start at its directory.
pub fn load(path: &Path) -> Result<Fleet, Diagnostics> {
    let (file, text, base_dir) = read(path)?;
    parse(&file, &text, &base_dir)
}

/// Read a fleet file and check its syntax and schema only, not what it means (paths that
/// exist on the node it is for need not exist here): for the image builder, which checks
/// the rest inside the image ([`load_in_root`]). Also returns the file's directory.
pub fn load_file(path: &Path) -> Result<(FleetFile, std::path::PathBuf), Diagnostics> {
    let (file, text, base_dir) = read(path)?;
    let (_, fleet_file, problems) = parse_file(&file, &text)?;
    if !problems.is_empty() {
        return Err(Diagnostics::new(
            file,
            problems.into_iter().map(|(d, _)| d).collect(),
        ));
    }
    Ok((fleet_file, base_dir))
}

/// The fleet file's name as given, its text and its absolute directory.
fn read(path: &Path) -> Result<(String, String, std::path::PathBuf), Diagnostics> {
    let file = path.display().to_string();
    let unreadable = |what: &str, e: std::io::Error| {
        Diagnostics::new(
            file.clone(),
            vec![Diagnostic::new(
                0,
                0,
                format!("cannot {what} {file}: {e}"),
                Some("check the path and its permissions".to_string()),
            )],
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable("read", e))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base_dir = std::path::absolute(parent).map_err(|e| unreadable("locate", e))?;
    Ok((file, text, base_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Diagnostic> {
        match parse("fleet.toml", text, Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(d) => d.items,
        }
    }

    #[test]
    fn a_backend_device_must_be_a_device_node_under_dev() {
        let fleet = |devices: &str| {
            format!(
                "[models]\n[[models.backend]]\nname = \"llama\"\nkind = \"llama-server\"\nbinary = \"/bin/sh\"\nmodel = \"/etc/hostname\"\nmodels = [\"m\"]\nport = 8081\ndevices = {devices}\n"
            )
        };
        let about_devices = |devices: &str| -> Vec<String> {
            problems(&fleet(devices))
                .into_iter()
                .filter(|d| d.message.contains("device"))
                .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
                .collect()
        };
        assert_eq!(about_devices(r#"["/dev/null"]"#), Vec::<String>::new());
        assert_eq!(
            about_devices(r#"["/etc/hostname", "/dev/nvidia-nonexistent", "/dev/shm"]"#),
            [
                r#"9:12 [models]: backend device "/etc/hostname" is not under /dev"#,
                r#"9:29 [models]: backend device "/dev/nvidia-nonexistent" cannot be used: No such file or directory (os error 2)"#,
                r#"9:56 [models]: backend device "/dev/shm" is not a device node"#,
            ]
        );
    }

    #[test]
    fn uid_base_leaves_room_below_it_for_the_model_backends() {
        let found = problems(
            "[node]\nuid_base = 65536\n[models]\n[[models.backend]]\nname = \"llama\"\nkind = \"llama-server\"\nbinary = \"/bin/sh\"\nmodel = \"/etc/hostname\"\nmodels = [\"m\"]\nport = 8081\n",
        );
        let d = found
            .iter()
            .find(|d| d.message.contains("uid_base"))
            .expect("a uid_base problem");
        assert_eq!(
            d.message,
            "[node]: uid_base 65536 leaves no room below it for 1 model backend(s)"
        );
        assert!(
            d.hint.as_deref().unwrap().contains("at least 131072"),
            "{d:?}"
        );
    }

    #[test]
    fn a_syntax_error_is_the_only_problem() {
        let found = problems("[node]\nuid_base = 1\n[[agent]]\nname = \"a\nmemroy = 1\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].col), (4, 10));
        assert!(found[0].message.starts_with("invalid TOML: "), "{found:?}");
    }

    #[test]
    fn duplicate_keys_are_named() {
        let found = problems("[node]\nname = \"a\"\nname = \"b\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].col), (3, 1));
        assert_eq!(found[0].message, "invalid TOML: duplicate key \"name\"");
    }

    #[test]
    fn schema_and_meaning_are_reported_in_one_pass() {
        // An unknown key no longer hides the rest: uid_base 1 is reported with it.
        let found = problems("[node]\nuid_base = 1\nnmae = \"x\"\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].message, "[node]: uid_base 1 is below 65536");
        assert_eq!(found[1].message, "[node]: unknown key \"nmae\"");
        // Nor duplicate names and bad values elsewhere; a wrongly typed key is taken out
        // and not reported twice.
        let found = problems(
            "[defaults]\ncpu = \"lots\"\nmemory = \"lots\"\n[[agent]]\nname = \"a\"\ncommand = \"/bin/sh\"\ncolour = 1\n[[agent]]\nname = \"a\"\ncommand = \"/bin/sh\"\n",
        );
        let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("cpu")), "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("memory \"lots\" is not a size")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("unknown key \"colour\"")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("\"a\"") && m.contains("more than once")
                    || m.contains("already")),
            "{messages:?}"
        );
        assert_eq!(
            found.iter().filter(|d| d.line == 2).count(),
            1,
            "{messages:?}"
        );
    }

    #[test]
    fn unreadable_file_has_no_position() {
        let err = load(Path::new("/nonexistent/fleet.toml")).unwrap_err();
        assert_eq!(err.file, "/nonexistent/fleet.toml");
        assert_eq!((err.items[0].line, err.items[0].col), (0, 0));
        assert!(err.items[0]
            .message
            .starts_with("cannot read /nonexistent/fleet.toml: "));
    }
}
