//! Fuzzes the output-name sanitiser and the output-path rules and checks the
//! promise of src/naming.rs: whatever a server or a list says, the path is
//! non-empty, relative, free of `.`/`..` components, NUL, control characters
//! and backslashes, and joined to a directory stays inside it.
//!
//! Input layout: up to three fields separated by NUL bytes: a URL path (or a
//! whole URL), an optional `dir=` value and an optional `out=` value. NUL
//! itself is also fed to the sanitiser whole, so it is still tested.
#![no_main]

use std::path::{Component, Path};

use haul::fuzzing::{name_from_url, output_path, sanitize_component, RelPath};
use libfuzzer_sys::fuzz_target;

fn check_component(name: &str, from: &str) {
    assert!(!name.is_empty(), "empty name from {from:?}");
    assert!(
        name != "." && name != "..",
        "dot name {name:?} from {from:?}"
    );
    assert!(
        !name.contains(['/', '\\', '\0']),
        "separator or NUL in {name:?}"
    );
    assert!(
        !name.chars().any(char::is_control),
        "control char in {name:?}"
    );
    assert!(name.len() <= 255, "{} bytes from {from:?}", name.len());
}

fn check_path(path: &RelPath, from: &str) {
    let s = path.as_str();
    assert!(!s.starts_with('/'), "absolute {s:?} from {from:?}");
    for component in path.components() {
        check_component(component, from);
    }
    // The stored form parses back to itself (a manifest round trip).
    assert_eq!(RelPath::parse(s).as_ref(), Ok(path), "from {from:?}");
    let root = Path::new("/srv/out");
    let joined = path.to_path(root);
    assert!(joined.starts_with(root), "{joined:?} escapes from {from:?}");
    assert!(joined
        .strip_prefix(root)
        .map(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
        .unwrap_or(false));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_component(&sanitize_component(text), text);
    if let Ok(path) = RelPath::parse(text) {
        check_path(&path, text);
    }

    let mut fields = text.splitn(3, '\0');
    let url_part = fields.next().unwrap_or("");
    let dir = fields.next().filter(|s| !s.is_empty());
    let out = fields.next().filter(|s| !s.is_empty());
    let url =
        url::Url::parse(url_part).or_else(|_| url::Url::parse(&format!("http://h/{url_part}")));
    let Ok(url) = url else {
        return;
    };
    check_component(&name_from_url(&url), url.as_str());
    if let Ok(path) = output_path(&url, dir, out) {
        check_path(&path, text);
    }
});
