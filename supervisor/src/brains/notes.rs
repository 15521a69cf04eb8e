//! What the brain sync tells an operator, in words: the lines `clawkeep logs NAME` and
//! `clawkeep sync status` show about deletions made or held back and merges that trusted no
//! base, each naming the command that undoes or confirms it.

use minio::follow::Note;
use minio::report::{Deletions, Held, LISTED};

fn listed(paths: &[String], count: usize) -> String {
    let mut s = paths.join(", ");
    if count > paths.len() {
        s.push_str(&format!(" and {} more", count - paths.len()));
    }
    s
}

/// `1 file`, `3 files`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn held_text(kind: &str, name: &str, h: &Held) -> String {
    let target = if kind == "agent" {
        name.to_string()
    } else {
        format!("shared:{name}")
    };
    format!(
        "{} in the store held back: {} ({}). Nothing was deleted; the files stay in the store. If they are meant, run `clawkeep sync push {target} --allow-deletes`",
        count(h.count, "deletion", "deletions"),
        h.reason,
        listed(&h.paths, h.count)
    )
}

fn deleted_text(kind: &str, name: &str, d: &Deletions) -> String {
    let undo = match (kind, &d.restore_at) {
        ("agent", Some(at)) => format!(
            "; history keeps them: `clawkeep restore {name} --at {at}` brings the brain back to just before"
        ),
        (_, Some(at)) => format!("; the bucket's history keeps them (snapshot of {at})"),
        _ => String::new(),
    };
    format!(
        "deleted {} in the store at {}: {}{undo}",
        count(d.count, "file", "files"),
        d.at,
        listed(&d.paths, d.count)
    )
}

/// The line a note becomes in the agent's log.
pub fn note_text(name: &str, note: &Note) -> String {
    match note {
        Note::Rebased(why) => {
            format!("brain: merged with the store without deleting anything on either side: {why}")
        }
        Note::Deleted(d) => format!("brain: {}", deleted_text("agent", name, d)),
        Note::Held(h) => format!("brain: {}", held_text("agent", name, h)),
        Note::Conflicts(c) => format!(
            "brain: changed on both sides (or an older copy was put back); both kept: {}",
            listed(&c[..c.len().min(LISTED)], c.len())
        ),
        Note::Failed(e) => format!("brain: sync failed, retrying: {e}"),
        Note::Unwatched(why) => format!("brain: {why}"),
    }
}

/// The lines under a row of `clawkeep sync status`.
pub fn status_notes(
    kind: &str,
    name: &str,
    held: Option<&Held>,
    deletions: Option<&Deletions>,
    rebased: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = held {
        out.push(held_text(kind, name, h));
    }
    if let Some(d) = deletions {
        out.push(deleted_text(kind, name, d));
    }
    if let Some(why) = rebased {
        out.push(format!(
            "the last pass merged with the store without deleting anything: {why}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_note_names_the_command_that_undoes_or_confirms_it() {
        let h = Held {
            reason: "this pass would delete 4 of the 7 files".into(),
            count: 4,
            bytes: 3 << 20,
            of_files: 7,
            of_bytes: 3 << 20,
            paths: vec!["AGENTS.md".into(), "IDENTITY.md".into()],
        };
        let t = note_text("research", &Note::Held(h.clone()));
        assert!(t.contains("AGENTS.md, IDENTITY.md and 2 more"), "{t}");
        assert!(
            t.contains("`clawkeep sync push research --allow-deletes`"),
            "{t}"
        );
        let shared = status_notes("shared", "docs", Some(&h), None, None);
        assert!(shared[0].contains("`clawkeep sync push shared:docs --allow-deletes`"));
        let d = Deletions {
            at: "2026-12-04T10:00:00Z".into(),
            count: 1,
            paths: vec!["notes.md".into()],
            restore_at: Some("2026-12-04T09:59:58.123456Z".into()),
        };
        let t = note_text("research", &Note::Deleted(d.clone()));
        assert!(
            t.contains("deleted 1 file in the store at 2026-12-04T10:00:00Z: notes.md")
                && t.contains("`clawkeep restore research --at 2026-12-04T09:59:58.123456Z`"),
            "{t}"
        );
    }
}
