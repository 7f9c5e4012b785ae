//! The core's modules form layers (docs/architecture.md): each imports only modules below it,
//! so no two modules import each other, directly or around a loop. Read from the sources: the
//! top-level modules of `src/` (a folder counts as one module) and the `crate::` paths their
//! code names, test code left out (tests may call the layers above the code they test).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The text after an attribute `#[cfg(test)]` and any visibility: the item it guards.
fn guarded_items(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.match_indices("#[cfg(test)]").map(move |(at, attr)| {
        let rest = text[at + attr.len()..].trim_start();
        (
            at,
            rest.strip_prefix("pub(crate)").unwrap_or(rest).trim_start(),
        )
    })
}

/// The names of modules declared test-only in `text` (`#[cfg(test)] mod name;`).
fn test_only_modules(text: &str) -> Vec<String> {
    guarded_items(text)
        .filter_map(|(_, item)| item.strip_prefix("mod "))
        .filter_map(|rest| rest.split_once(';'))
        .filter(|(name, _)| !name.contains('{'))
        .map(|(name, _)| name.trim().to_string())
        .collect()
}

/// Whether `item` is a module written inline (`mod name { ... }`, not `mod name;`).
fn is_inline_module(item: &str) -> bool {
    let Some(rest) = item.strip_prefix("mod ") else {
        return false;
    };
    match (rest.find('{'), rest.find(';')) {
        (Some(brace), Some(semicolon)) => brace < semicolon,
        (brace, _) => brace.is_some(),
    }
}

/// `text` without its inline test module (`#[cfg(test)] mod tests { ... }`, at the end).
fn without_tests(text: &str) -> &str {
    let inline = guarded_items(text).find(|(_, item)| is_inline_module(item));
    inline.map_or(text, |(at, _)| &text[..at])
}

/// The top-level modules that code (not comments) in `text` names as `crate::name` or
/// `crate::{name, ...}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(list) => names.extend(
                    list.split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|n| ident(n.trim())),
                ),
                None => {
                    names.insert(ident(rest));
                }
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Module -> the modules its code imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&src);
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let test_only: BTreeSet<String> = texts
        .iter()
        .flat_map(|(_, text)| test_only_modules(text))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in &texts {
        let rel = file.strip_prefix(&src).unwrap();
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || test_only.contains(stem) {
            continue;
        }
        let imports = named_modules(without_tests(text));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A loop of imports through `start`, if any (depth-first search).
fn loop_through(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let last = path.last().unwrap().clone();
    for next in graph.get(&last).into_iter().flatten() {
        if next == start {
            return Some(path.clone());
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(found) = loop_through(graph, start, path) {
                return Some(found);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = import_graph();
    assert!(graph.contains_key("mode") && graph.contains_key("assign"));
    assert!(graph["network"].contains("mode"), "{graph:?}");
    for module in graph.keys() {
        let found = loop_through(&graph, module, &mut vec![module.clone()]);
        assert!(
            found.is_none(),
            "an import loop: {:?} -> {module}",
            found.unwrap()
        );
    }
}

#[test]
fn the_assignment_algorithms_and_the_policy_know_nothing_of_modes_or_loops() {
    let graph = import_graph();
    for lower in ["assign", "similarity", "policy", "canonical"] {
        for upper in ["mode", "network", "graph_match", "pairwise"] {
            assert!(!graph[lower].contains(upper), "{lower} imports {upper}");
        }
    }
}

#[test]
fn the_reader_sees_through_comments_groups_and_test_modules() {
    let text = "use crate::a::x;\n// crate::b\nuse crate::{c, d::y};\n#[cfg(test)]\nmod tests {\n    use crate::e;\n}\n";
    let names: Vec<String> = named_modules(without_tests(text)).into_iter().collect();
    assert_eq!(names, ["a", "c", "d"]);
    assert_eq!(
        test_only_modules("#[cfg(test)]\nmod reference;\n"),
        ["reference"]
    );
}
