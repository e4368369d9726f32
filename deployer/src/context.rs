//! The build context: the context directory as a tar stream, without what `.dockerignore`
//! excludes (patterns, `**`, and `!` exceptions; the Dockerfile and `.dockerignore` always go).

use std::path::Path;

use anyhow::Context;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The files of `dir` that a build would send, as paths relative to `dir`, sorted.
pub fn files(dir: &Path, dockerfile: &str) -> anyhow::Result<Vec<String>> {
    let rules = rules(dir)?;
    let mut out = Vec::new();
    walk(dir, dir, &rules, &mut out)?;
    let dockerfile = dockerfile.trim_start_matches("./").to_string();
    for always in [dockerfile, ".dockerignore".to_string()] {
        if dir.join(&always).is_file() && !out.contains(&always) {
            out.push(always);
        }
    }
    out.sort();
    Ok(out)
}

/// The build context of `dir` as a tar archive.
pub fn tar(dir: &Path, dockerfile: &str) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for rel in files(dir, dockerfile)? {
        // A plain entry from the file's bytes: `append_path` would write GNU sparse entries for
        // sparse files (a fresh linker output can be one), which the engine refuses.
        let path = dir.join(&rel);
        let file = std::fs::File::open(&path).with_context(|| format!("reading {rel}"))?;
        let meta = file.metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        builder
            .append_data(&mut header, &rel, file)
            .with_context(|| format!("adding {rel} to the build context"))?;
    }
    builder.into_inner().context("finishing the build context")
}

struct Rules {
    ignore: Gitignore,
    /// The literal leading directories of `!` patterns: a directory on the way to one of them
    /// must be walked even though it is excluded.
    exception_prefixes: Vec<String>,
}

fn rules(dir: &Path) -> anyhow::Result<Rules> {
    let mut builder = GitignoreBuilder::new(dir);
    let mut exception_prefixes = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(".dockerignore")) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            // Docker anchors every pattern at the context root.
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => ("!", p.trim()),
                None => ("", line),
            };
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            if neg == "!" {
                let literal: Vec<&str> = pat
                    .split('/')
                    .take_while(|part| !part.contains(['*', '?', '[']))
                    .collect();
                exception_prefixes.push(literal.join("/"));
            }
            builder
                .add_line(None, &format!("{neg}/{pat}"))
                .with_context(|| format!(".dockerignore: bad pattern '{line}'"))?;
        }
    }
    Ok(Rules {
        ignore: builder.build().context(".dockerignore")?,
        exception_prefixes,
    })
}

fn walk(root: &Path, dir: &Path, rules: &Rules, out: &mut Vec<String>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .to_string();
        let kind = entry.file_type()?;
        // As Docker does: a path is out when it or its nearest matching parent is excluded,
        // unless an exception (`!pattern`) matches first.
        let ignored = rules
            .ignore
            .matched_path_or_any_parents(&path, kind.is_dir())
            .is_ignore();
        if kind.is_dir() {
            let on_the_way = rules.exception_prefixes.iter().any(|p| {
                p == &rel || p.starts_with(&format!("{rel}/")) || rel.starts_with(&format!("{p}/"))
            });
            if !ignored || on_the_way {
                walk(root, &path, rules, out)?;
            }
        } else if !ignored {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_excludes_with_exceptions() {
        let dir = std::env::temp_dir().join(format!("deployer-ctx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in [
            "src/main.rs",
            "target/release/app",
            "target/release/deps/big.rlib",
            "app/Dockerfile",
            "app/image/data/README",
            ".env",
            "README.md",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::write(
            dir.join(".dockerignore"),
            "# only the binary\n*\n!target/release/app\n!app/image\n",
        )
        .unwrap();
        assert_eq!(
            files(&dir, "app/Dockerfile").unwrap(),
            [
                ".dockerignore",
                "app/Dockerfile",
                "app/image/data/README",
                "target/release/app"
            ]
        );
        std::fs::write(dir.join(".dockerignore"), "target\n**/*.md\n.env\n").unwrap();
        assert_eq!(
            files(&dir, "app/Dockerfile").unwrap(),
            [
                ".dockerignore",
                "app/Dockerfile",
                "app/image/data/README",
                "src/main.rs"
            ]
        );
        let archive = tar(&dir, "app/Dockerfile").unwrap();
        let names: Vec<String> = tar::Archive::new(archive.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "app/Dockerfile",
                "app/image/data/README",
                "src/main.rs"
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
