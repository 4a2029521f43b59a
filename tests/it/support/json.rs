//! Reading `--json` output: every stdout line is one event object.

use serde_json::Value;

use super::cli::Outcome;

/// Every stdout line as JSON; panics naming the line that does not parse.
pub fn json_lines(out: &Outcome) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line:?}\n{out}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect()
}

/// The lines whose `event` is `name`.
pub fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}
