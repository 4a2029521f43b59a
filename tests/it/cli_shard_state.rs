//! Shard state that knows its list (issue 13): every run records the list
//! it came from beside its manifest, `haul status` reports what the list
//! names and no manifest holds (a shard that never ran, a stray shard
//! directory), and a file another shard's run finished counts as haul's
//! own.

use crate::support::bodies::body;
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

const FILES: usize = 40;

fn name(i: usize) -> String {
    format!("f{i:02}.bin")
}

fn file_body(i: usize) -> Vec<u8> {
    body(7_000 + i as u64, 300 + i)
}

/// A server with `FILES` files.
fn serve() -> TestServer {
    let server = TestServer::start();
    for i in 0..FILES {
        server.add_file(&format!("/{}", name(i)), file_body(i));
    }
    server
}

/// A list of the first `listed` files, written to `list_name` in the sandbox.
fn write_list(sb: &Sandbox, server: &TestServer, list_name: &str, listed: usize) -> String {
    let text: String = (0..listed)
        .map(|i| format!("{}\n", server.url(&format!("/{}", name(i)))))
        .collect();
    sb.write(list_name, text).display().to_string()
}

fn get_shard(sb: &Sandbox, list: &str, shard: &str) -> crate::support::cli::Outcome {
    sb.haul([
        "get",
        "-i",
        list,
        "-d",
        &sb.dir_arg(),
        "-q",
        "--shard",
        shard,
    ])
    .run()
}

fn stamp(sb: &Sandbox, state: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(sb.dl(&format!(".haul/{state}/list.json")))
        .unwrap_or_else(|e| panic!("no list.json in .haul/{state}: {e}"));
    serde_json::from_str(&text).expect("list.json is JSON")
}

#[test]
fn a_run_records_its_list_and_says_once_when_the_list_changed() {
    let sb = Sandbox::new();
    let server = serve();
    let list = write_list(&sb, &server, "urls.txt", 30);
    get_shard(&sb, &list, "1/2").assert_code(0);
    let first = stamp(&sb, "shard-1-of-2");
    assert_eq!(first["jobs"], 30, "{first}");
    assert_eq!(first["shard"]["index"], 1, "{first}");
    assert_eq!(first["shard"]["count"], 2, "{first}");
    let own = first["shard"]["jobs"].as_u64().expect("a count");
    assert!(own > 0 && own < 30, "{first}");
    let print = first["fingerprint"].as_str().expect("a fingerprint");
    assert_eq!(print.len(), 64, "{first}");

    // The other shard of the same list agrees on it.
    get_shard(&sb, &list, "0/2").assert_code(0);
    let other = stamp(&sb, "shard-0-of-2");
    assert_eq!(other["fingerprint"], first["fingerprint"]);
    assert_eq!(
        other["shard"]["jobs"].as_u64().expect("a count") + own,
        30,
        "{other}"
    );

    // The same files by other URLs (a re-signed list) are the same list.
    let moved: String = (0..30)
        .map(|i| format!("{}?sig=2\n", server.url(&format!("/{}", name(i)))))
        .collect();
    let moved = sb.write("moved.txt", moved).display().to_string();
    let again = get_shard(&sb, &moved, "1/2");
    again.assert_code(0);
    assert!(!again.stderr.contains("another list"), "{again}");

    // A longer list is another list: said once, and recorded.
    let longer = write_list(&sb, &server, "longer.txt", FILES);
    let out = get_shard(&sb, &longer, "1/2");
    out.assert_code(0);
    assert_eq!(out.stderr.matches("another list").count(), 1, "{out}");
    assert!(out.stderr.contains("shard-1-of-2"), "{out}");
    let now = stamp(&sb, "shard-1-of-2");
    assert_eq!(now["jobs"], FILES, "{now}");
    assert_ne!(now["fingerprint"], first["fingerprint"]);
}
