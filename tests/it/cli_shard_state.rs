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

/// The shard of `path` among `n`, computed here independently of haul.
fn shard_of(path: &str, n: u64) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.as_bytes());
    let head: [u8; 8] = digest[..8].try_into().expect("8 bytes");
    u64::from_be_bytes(head) % n
}

fn status_json(sb: &Sandbox) -> (i32, serde_json::Value) {
    let out = sb.haul(["status", "--json", "-d", &sb.dir_arg()]).run();
    let code = out.code().unwrap_or(-1);
    let value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    (code, value)
}

#[test]
fn status_names_a_shard_that_never_ran_and_exits_non_zero_until_it_has() {
    const N: u64 = 4;
    let sb = Sandbox::new();
    let server = serve();
    let list = write_list(&sb, &server, "urls.txt", FILES);
    for k in 0..N - 1 {
        get_shard(&sb, &list, &format!("{k}/{N}")).assert_code(0);
    }
    let last: Vec<String> = (0..FILES)
        .map(name)
        .filter(|p| shard_of(p, N) == N - 1)
        .collect();
    assert!(!last.is_empty(), "the last shard has files");

    let out = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    out.assert_code(1);
    assert!(
        out.stdout
            .contains(&format!("list: {FILES} jobs in {N} shards (fingerprint ")),
        "{out}"
    );
    let jobs = if last.len() == 1 { "job" } else { "jobs" };
    let missing = format!("{} {jobs} in no manifest yet", last.len());
    assert!(out.stdout.contains(&missing), "{out}");
    let never = "never started: shard 3/4 (no .haul/shard-3-of-4)";
    assert!(out.stdout.contains(never), "{out}");

    let (code, json) = status_json(&sb);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["unrecorded"], last.len(), "{json}");
    assert_eq!(json["missing_shards"], serde_json::json!(["3/4"]), "{json}");
    assert_eq!(json["list"]["jobs"], FILES, "{json}");
    assert_eq!(json["list"]["shards"], N, "{json}");
    assert_eq!(json["complete"], false, "{json}");
    // The fields scripts read before are still there.
    assert_eq!(json["jobs"], FILES - last.len(), "{json}");
    assert_eq!(json["done"], FILES - last.len(), "{json}");

    get_shard(&sb, &list, &format!("{}/{N}", N - 1)).assert_code(0);
    let out = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!("{FILES} jobs: {FILES} done")),
        "{out}"
    );
    assert!(!out.stdout.contains("never started"), "{out}");
    assert!(!out.stdout.contains("in no manifest"), "{out}");
    let (code, json) = status_json(&sb);
    assert_eq!(
        (code, &json["complete"]),
        (0, &serde_json::json!(true)),
        "{json}"
    );
    assert_eq!(json["unrecorded"], 0, "{json}");
}

#[test]
fn status_reports_a_stray_shard_dir_and_never_lets_it_shadow_a_done_file() {
    let sb = Sandbox::new();
    let server = serve();
    let list = write_list(&sb, &server, "urls.txt", FILES);
    get_shard(&sb, &list, "0/2").assert_code(0);
    get_shard(&sb, &list, "1/2").assert_code(0);
    // A retry submitted as an array of one: --shard 0/1 over the list
    // the two shards already finished.
    get_shard(&sb, &list, "0/1");
    assert!(sb.dl(".haul/shard-0-of-1").is_dir());

    let out = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains(
            "stray state .haul/shard-0-of-1: run as shard 0 of 1, but the list is run as 2 shards"
        ),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("{FILES} jobs: {FILES} done")),
        "{out}"
    );
    let (code, json) = status_json(&sb);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["strays"][0]["dir"], ".haul/shard-0-of-1", "{json}");
    assert_eq!(json["list"]["shards"], 2, "{json}");
    assert!(
        json["missing_shards"].as_array().is_some_and(Vec::is_empty),
        "{json}"
    );
}

#[test]
fn files_other_shards_finished_are_skipped_by_another_n_and_by_no_shard() {
    let sb = Sandbox::new();
    let server = serve();
    let list = write_list(&sb, &server, "urls.txt", FILES);
    get_shard(&sb, &list, "0/2").assert_code(0);
    get_shard(&sb, &list, "1/2").assert_code(0);
    let fetched = server.requests().len();

    // The documented retry of one task, submitted as an array of one.
    let out = sb
        .haul([
            "get",
            "-i",
            &list,
            "-d",
            &sb.dir_arg(),
            "--shard",
            "0/1",
            "--write-sums",
            "SUMS.0",
        ])
        .run();
    out.assert_code(0);
    assert!(!out.stderr.contains("exists"), "{out}");
    assert_eq!(
        server.requests().len(),
        fetched,
        "something was fetched again"
    );
    // Its sums list every file, as its own.
    let sums = std::fs::read_to_string(sb.root().join("SUMS.0")).expect("sums written");
    assert_eq!(sums.lines().count(), FILES, "{sums}");
    for i in 0..FILES {
        let want = format!(
            "{}  {}",
            crate::support::bodies::sha256_hex(&file_body(i)),
            name(i)
        );
        assert!(sums.contains(&want), "{want} missing from\n{sums}");
    }

    // Without --shard too; a file changed since its shard finished is not
    // vouched for, and is refused as before.
    std::fs::write(sb.dl(&name(3)), b"changed by hand").expect("overwrite");
    let out = sb
        .haul(["get", "-i", &list, "-d", &sb.dir_arg(), "-q"])
        .run();
    out.assert_code(1);
    assert_eq!(out.stderr.matches("exists").count(), 1, "{out}");
    assert!(out.stderr.contains(&name(3)), "{out}");
    assert_eq!(
        server.requests().len(),
        fetched,
        "something was fetched again"
    );
    for i in (0..FILES).filter(|&i| i != 3) {
        crate::support::bodies::assert_file_eq(&sb.dl(&name(i)), &file_body(i));
    }
}
