//! Every crate's modules form a tree you can draw: no module imports a module that imports it
//! back (directly or around a longer circle).
//!
//! How it checks: each library and binary target's source tree is parsed with `syn`, module by
//! module (`#[cfg(test)]` modules skipped). Every path a module names that starts with `crate`,
//! `super` or `self` (in `use` items, types, expressions and patterns) is an edge to the
//! longest module that path names: `crate::validate::Caller` is an edge to `validate`,
//! `super::jws::Jws` one to the sibling `jws`. A parent that re-exports a child's item is an
//! edge to that child, so a child that also reads an item defined in its parent closes a
//! circle. The strongly connected components of that graph must all be single modules.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path from its crate root (`[]` is the root).
type ModPath = Vec<String>;

struct Module {
    /// Edges to other modules, each with one path that shows it.
    imports: BTreeMap<ModPath, String>,
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut report = Vec::new();
    let mut checked = 0;
    for target in targets(&root) {
        let modules = parse_crate(&target);
        checked += modules.len();
        for circle in circles(&modules) {
            let edges: Vec<String> = circle
                .iter()
                .flat_map(|from| {
                    modules[from]
                        .imports
                        .iter()
                        .filter(|(to, _)| circle.contains(to))
                        .map(move |(to, via)| format!("    {} -> {} (`{via}`)", show(from), show(to)))
                })
                .collect();
            report.push(format!("{}:\n{}", target.display(), edges.join("\n")));
        }
    }
    assert!(checked > 100, "only {checked} modules found: is the workspace layout what this test expects?");
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_finds_a_circle_between_a_parent_and_its_child() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\npub use a::A;\n").unwrap();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("a.rs"), "mod inner;\npub struct A;\npub use inner::Inner;\n").unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::A;\npub struct Inner(A);\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub fn f() -> crate::a::A { crate::a::A }\n").unwrap();
    let modules = parse_crate(&src.join("lib.rs"));
    let found: Vec<Vec<String>> = circles(&modules).iter().map(|c| c.iter().map(show).collect()).collect();
    assert_eq!(found, [vec!["a".to_string(), "a::inner".to_string()]]);
}

/// The `src/lib.rs` and `src/main.rs` of every workspace member.
fn targets(root: &Path) -> Vec<PathBuf> {
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml")).unwrap().parse().unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    let mut targets = Vec::new();
    for member in members {
        let src = root.join(member.as_str().unwrap()).join("src");
        for file in ["lib.rs", "main.rs"] {
            if src.join(file).is_file() {
                targets.push(src.join(file));
            }
        }
    }
    targets
}

fn parse_crate(root_file: &Path) -> BTreeMap<ModPath, Module> {
    let mut modules = BTreeMap::new();
    let file = read(root_file);
    let dir = root_file.parent().unwrap().to_path_buf();
    collect(&mut modules, Vec::new(), &file.items, &dir);
    // Keep only edges that name a module (longest prefix) other than the module itself.
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    for module in modules.values_mut() {
        let raw = std::mem::take(&mut module.imports);
        for (path, via) in raw {
            let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| known.contains(p));
            if let Some(target) = target {
                module.imports.entry(target).or_insert(via);
            }
        }
    }
    for (name, module) in modules.iter_mut() {
        module.imports.remove(name);
    }
    modules
}

fn read(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Records module `path` (whose items are `items`; its child files live in `dir`) and its
/// descendants.
fn collect(modules: &mut BTreeMap<ModPath, Module>, path: ModPath, items: &[syn::Item], dir: &Path) {
    // `use child::Item` (a path relative to this module) names a child module too.
    let children = items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if !is_test_only(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut refs = Refs { here: path.clone(), children, found: Vec::new() };
    for item in items {
        match item {
            syn::Item::Mod(m) if is_test_only(&m.attrs) => {}
            syn::Item::Mod(m) => {
                let mut child = path.clone();
                child.push(m.ident.to_string());
                let child_dir = dir.join(m.ident.to_string());
                match &m.content {
                    Some((_, inner)) => collect(modules, child, inner, &child_dir),
                    None => {
                        let flat = dir.join(format!("{}.rs", m.ident));
                        let nested = child_dir.join("mod.rs");
                        let child_file = if flat.is_file() { flat } else { nested };
                        let parsed = read(&child_file);
                        collect(modules, child, &parsed.items, &child_dir);
                    }
                }
            }
            item if is_test_only(attrs(item)) => {}
            item => refs.visit_item(item),
        }
    }
    let mut module = Module { imports: BTreeMap::new() };
    for (target, via) in refs.found {
        module.imports.entry(target).or_insert(via);
    }
    modules.insert(path, module);
}

fn attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        _ => &[],
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test")))
}

/// The `crate`/`super`/`self` paths one module names, made absolute.
struct Refs {
    here: ModPath,
    children: BTreeSet<String>,
    found: Vec<(ModPath, String)>,
}

impl Refs {
    fn add(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else { return };
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => self.here.clone(),
            child if self.children.contains(child) => self.here.clone(),
            _ => return,
        };
        let mut rest = if self.children.contains(first) { segments } else { &segments[1..] };
        if first == "super" {
            base.pop();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        base.extend(rest.iter().filter(|s| *s != "*").cloned());
        self.found.push((base, segments.join("::")));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.add(&full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.add(&full);
            }
            syn::UseTree::Glob(_) => self.add(prefix),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(&segments);
        syn::visit::visit_path(self, path);
    }

    // `pub(crate)`, `pub(super)`: who may see an item, not an import.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    // Nested inline modules are walked by `collect`, as modules of their own.
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn circles(modules: &BTreeMap<ModPath, Module>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        modules: &'a BTreeMap<ModPath, Module>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.modules[v].imports.keys() {
            let Some((w, _)) = s.modules.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        modules,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in modules.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn show(path: &ModPath) -> String {
    if path.is_empty() { "crate".to_string() } else { path.join("::") }
}
