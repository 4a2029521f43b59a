//! `--shard K/N`: N shards of one list download every file exactly once,
//! each shard its own part (the documented hash: the first 8 bytes of the
//! sha256 of the output path, big-endian, modulo N), and shards running at
//! once into one directory keep out of each other's way.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::{Sandbox, RUN_TIMEOUT};
use crate::support::server::TestServer;

const FILES: usize = 200;

fn name(i: usize) -> String {
    format!("f{i:03}.bin")
}

fn file_body(i: usize) -> Vec<u8> {
    body(1_000 + i as u64, 512 + i)
}

/// The shard a path belongs to, computed here independently of haul.
fn expected_shard(path: &str, n: u64) -> u64 {
    let digest = Sha256::digest(path.as_bytes());
    let head: [u8; 8] = digest[..8].try_into().expect("8 bytes");
    u64::from_be_bytes(head) % n
}

/// A server with the 200 files and a list of them in the sandbox.
fn serve_list(sb: &Sandbox) -> (TestServer, String) {
    let server = TestServer::start();
    let mut list = String::new();
    for i in 0..FILES {
        server.add_file(&format!("/{}", name(i)), file_body(i));
        list.push_str(&server.url(&format!("/{}", name(i))));
        list.push('\n');
    }
    let list = sb.write("urls.txt", list).display().to_string();
    (server, list)
}

fn downloaded(sb: &Sandbox) -> BTreeSet<String> {
    sb.downloads()
        .into_iter()
        .map(|p: PathBuf| p.display().to_string())
        .collect()
}

#[test]
fn n_shards_cover_the_list_exactly_once() {
    for n in 1..=5u64 {
        let sb = Sandbox::new();
        let (server, list) = serve_list(&sb);
        let mut union = BTreeSet::new();
        for k in 0..n {
            let before = downloaded(&sb);
            sb.haul([
                "get",
                "-i",
                &list,
                "-d",
                &sb.dir_arg(),
                "-q",
                "--shard",
                &format!("{k}/{n}"),
            ])
            .run()
            .assert_code(0);
            let part: BTreeSet<String> = downloaded(&sb).difference(&before).cloned().collect();
            let want: BTreeSet<String> = (0..FILES)
                .map(name)
                .filter(|p| expected_shard(p, n) == k)
                .collect();
            assert_eq!(part, want, "shard {k}/{n} downloaded another part");
            assert!(union.is_disjoint(&part), "shard {k}/{n} overlaps");
            union.extend(part);
            assert!(
                sb.dl(&format!(".haul/shard-{k}-of-{n}/manifest.json"))
                    .is_file(),
                "shard {k}/{n} has no manifest of its own"
            );
        }
        let all: BTreeSet<String> = (0..FILES).map(name).collect();
        assert_eq!(union, all, "n={n}");
        for i in 0..FILES {
            let path = format!("/{}", name(i));
            assert_eq!(server.gets(&path).len(), 1, "{path} fetched again, n={n}");
        }
        assert!(!sb.dl(".haul/manifest.json").exists());
    }
}

#[test]
fn shards_run_at_once_into_one_directory() {
    const N: u64 = 3;
    let sb = Sandbox::new();
    let (server, list) = serve_list(&sb);
    // One slow file per shard keeps all three running at the same time: a
    // shared lock or manifest would make one of them fail.
    for k in 0..N {
        let i = (0..FILES)
            .find(|&i| expected_shard(&name(i), N) == k)
            .expect("every shard has files");
        server.set_rate(&format!("/{}", name(i)), 300);
    }
    let running: Vec<_> = (0..N)
        .map(|k| {
            sb.haul([
                "get",
                "-i",
                &list,
                "-d",
                &sb.dir_arg(),
                "-q",
                "--shard",
                &format!("{k}/{N}"),
                "--write-sums",
                &format!("SUMS.{k}"),
            ])
            .spawn()
        })
        .collect();
    for run in running {
        run.wait(RUN_TIMEOUT).assert_code(0);
    }
    for i in 0..FILES {
        assert_file_eq(&sb.dl(&name(i)), &file_body(i));
    }
    sb.assert_no_part_files();

    // Each shard's sums hold its own part; together they hold the list.
    let mut lines = Vec::new();
    for k in 0..N {
        let text = std::fs::read_to_string(sb.root().join(format!("SUMS.{k}"))).expect("sums");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let want: Vec<String> = (0..FILES)
        .map(|i| format!("{}  {}", sha256_hex(&file_body(i)), name(i)))
        .collect();
    assert_eq!(lines, want);

    // verify and status read every shard's manifest; verify --write-sums
    // gives one sums file for the whole directory.
    sb.haul(["verify", "-d", &sb.dir_arg(), "-q", "--write-sums", "ALL"])
        .run()
        .assert_code(0);
    let all = std::fs::read_to_string(sb.root().join("ALL")).expect("ALL");
    assert_eq!(
        all,
        want.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    let status = sb.haul(["status", "-d", &sb.dir_arg()]).run();
    status.assert_code(0);
    assert!(status.stdout.contains("200 jobs: 200 done"), "{status}");
    let one = sb
        .haul(["status", "-d", &sb.dir_arg(), "--shard", "1/3"])
        .run();
    one.assert_code(0);
    let ones = (0..FILES)
        .filter(|&i| expected_shard(&name(i), N) == 1)
        .count();
    let want = format!("{ones} jobs: {ones} done");
    assert!(one.stdout.contains(&want), "{one}");
}

#[test]
fn list_errors_are_found_on_every_shard() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    // Two URLs to one output path: whichever shard would own it, every shard
    // must refuse the list, or the two would be downloaded by two machines.
    let list = format!(
        "{}\n  out=same.bin\n{}\n  out=same.bin\n",
        server.url("/a"),
        server.url("/b")
    );
    let list = sb.write("urls.txt", list).display().to_string();
    for k in 0..4 {
        sb.haul([
            "get",
            "-i",
            &list,
            "-d",
            &sb.dir_arg(),
            "--shard",
            &format!("{k}/4"),
        ])
        .run()
        .assert_code(2);
    }
    let out = sb.haul(["get", &server.url("/a"), "--shard", "4/4"]).run();
    out.assert_code(2).assert_stderr_has(&["4/4"]);
}
