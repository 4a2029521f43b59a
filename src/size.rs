//! Byte counts and rates as a user types them: `--max-speed 2M`,
//! `--min-split-size 16MiB`, `limit-rate = "512K"` in a config file. Every
//! flag and config key that takes a size or a rate goes through
//! [`parse_size`], so they all accept the same forms and fail the same way
//! (clap, and the config file through clap, name the flag and the value).
//!
//! The forms: a whole number of bytes, optionally followed (a space
//! between is allowed) by `B`, `K`, `M`, `G`, `T` or `KiB`, `MiB`, `GiB`,
//! `TiB`, in any case. Every unit is a power of 1024, as in aria2 and curl
//! and as haul has always read them: `--max-speed 1M` is 1,048,576 bytes a
//! second. `KB`, `MB` and fractions are refused rather than guessed at
//! (a `MB` could mean 1000² or 1024² bytes). This module parses text and
//! does nothing else.

/// A byte count, or bytes a second, with an optional binary unit; see the
/// module docs for the forms. The error names the value and says what a
/// size looks like.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "'{text}' is not a size: give bytes, or a whole number with K, M, G or T \
             (or KiB, MiB, GiB, TiB; powers of 1024), e.g. 16M"
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        _ => return Err(bad()),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{text}' is too large (at most {} bytes)", u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bytes_and_binary_units_in_any_case() {
        let cases = [
            ("0", 0),
            ("2048", 2048),
            ("2048B", 2048),
            ("2K", 2 << 10),
            ("2k", 2 << 10),
            ("2KiB", 2 << 10),
            ("2kib", 2 << 10),
            ("16M", 16 << 20),
            ("16 MiB", 16 << 20),
            (" 1G ", 1 << 30),
            ("1GiB", 1 << 30),
            ("3T", 3 << 40),
            ("3TiB", 3 << 40),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_it_would_have_to_guess_naming_the_value() {
        for text in [
            "", " ", "M", "2X", "2MB", "2 Mbit", "1.5M", "-1", "+1", "0x10", "2M2", "K2",
        ] {
            let err = parse_size(text).expect_err(text);
            assert!(err.starts_with(&format!("'{text}' is not a size")), "{err}");
            assert!(err.contains("e.g. 16M"), "{err}");
        }
    }

    #[test]
    fn refuses_sizes_past_64_bits() {
        let err = parse_size("99999999999999999999").expect_err("overflow");
        assert!(err.contains("too large"), "{err}");
        let err = parse_size("17179869184G").expect_err("overflow");
        assert!(err.contains("too large"), "{err}");
        assert_eq!(parse_size("17179869183G"), Ok(17_179_869_183 << 30));
    }
}
