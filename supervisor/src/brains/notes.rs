//! What the brain sync tells an operator, in words: the lines `clawkeep logs NAME` and
//! `clawkeep sync status` show about deletions made or held back, merges that trusted no
//! base and files left out for their size, each naming the command or setting that undoes,
//! confirms or fixes it.

use clawkeep_store::follow::Note;
use clawkeep_store::report::{size, Deletions, Held, SyncReport, TooBig, LISTED};

fn listed(paths: &[String], count: usize) -> String {
    let mut s = paths.join(", ");
    if count > paths.len() {
        s.push_str(&format!(" and {} more", count - paths.len()));
    }
    s
}

/// `1 file`, `3 files`.
fn count_of(n: usize, one: &str, many: &str) -> String {
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
        count_of(h.count, "deletion", "deletions"),
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
        count_of(d.count, "file", "files"),
        d.at,
        listed(&d.paths, d.count)
    )
}

/// `N files over max_file_size (1.0 GiB) are not synced: a (1.0 TiB, not uploaded), ...`
/// with what keeps them safe and how to sync them; `files` are the first of `count`.
fn too_big_text(limit: u64, files: &[TooBig], count: usize) -> String {
    let named: Vec<String> = files
        .iter()
        .map(|t| {
            let (side, not) = match t.in_store {
                true => (" in the store", "not downloaded"),
                false => ("", "not uploaded"),
            };
            format!("{} ({}{side}, {not})", t.path, size(t.size))
        })
        .collect();
    let are = if count == 1 { "is" } else { "are" };
    format!(
        "{} larger than max_file_size ({}) {are} not synced: {}. Nothing is deleted on either side for it; each syncs once it is smaller, or raise max_file_size in the fleet file's [store]",
        count_of(count, "file", "files"),
        size(limit),
        listed(&named, count)
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
        Note::TooBig {
            limit,
            files,
            count,
        } => format!("brain: {}", too_big_text(*limit, files, *count)),
    }
}

/// The lines under a row of `clawkeep sync status`; `too_big` is the size limit and the
/// last pass's report, whose files left out for their size are listed.
pub fn status_notes(
    kind: &str,
    name: &str,
    held: Option<&Held>,
    deletions: Option<&Deletions>,
    rebased: Option<&str>,
    too_big: Option<(u64, &SyncReport)>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((limit, r)) = too_big.filter(|(_, r)| r.too_big_count > 0) {
        out.push(too_big_text(limit, &r.too_big, r.too_big_count));
    }
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
        let shared = status_notes("shared", "docs", Some(&h), None, None, None);
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

    #[test]
    fn a_file_too_big_to_sync_is_named_with_its_size_the_limit_and_the_fix() {
        let big = |path: &str, size: u64, in_store: bool| TooBig {
            path: path.into(),
            size,
            in_store,
        };
        let note = Note::TooBig {
            limit: 1 << 30,
            files: vec![big("disk.img", 1 << 40, false)],
            count: 1,
        };
        assert_eq!(
            note_text("research", &note),
            "brain: 1 file larger than max_file_size (1.0 GiB) is not synced: disk.img (1.0 TiB, \
             not uploaded). Nothing is deleted on either side for it; each syncs once it is \
             smaller, or raise max_file_size in the fleet file's [store]"
        );
        let report = SyncReport {
            too_big: vec![big("a.bin", 3 << 30, true), big("b.bin", 2 << 30, false)],
            too_big_count: 25,
            ..Default::default()
        };
        let lines = status_notes(
            "agent",
            "research",
            None,
            None,
            None,
            Some((1 << 30, &report)),
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "25 files larger than max_file_size (1.0 GiB) are not synced: a.bin (3.0 GiB in \
                 the store, not downloaded), b.bin (2.0 GiB, not uploaded) and 23 more."
            ),
            "{lines:?}"
        );
        let clean = SyncReport::default();
        assert!(status_notes("agent", "r", None, None, None, Some((1, &clean))).is_empty());
    }
}
