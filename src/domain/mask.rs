//! Masking of personal data for logs: ID numbers, names and phones never
//! appear whole in a log line.

/// An ID number: the first 4 and last 4 characters of an 18-character
/// one; a shorter one keeps at most a third of its characters.
pub fn id(raw: &str) -> String {
    let n = raw.chars().count();
    if n >= 18 {
        keep_ends(raw, 4, 4)
    } else {
        third(raw, n)
    }
}

/// A phone number: the first 3 and last 4 digits of an 11-digit one; a
/// shorter one keeps at most a third.
pub fn phone(raw: &str) -> String {
    let n = raw.chars().count();
    if n >= 11 {
        keep_ends(raw, 3, 4)
    } else {
        third(raw, n)
    }
}

/// Keep at most a third of the characters, split between the ends.
fn third(raw: &str, n: usize) -> String {
    let keep = n / 3;
    keep_ends(raw, keep - keep / 2, keep / 2)
}

/// Keep the first character of a name.
pub fn name(raw: &str) -> String {
    keep_ends(raw, 1, 0)
}

fn keep_ends(raw: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= head + tail || chars.is_empty() {
        return "*".repeat(chars.len().max(1));
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_hide_the_middle() {
        assert_eq!(super::id("340102199003073238"), "3401**********3238");
        assert_eq!(super::phone("15665439684"), "156****9684");
        assert_eq!(super::name("张三"), "张*");
        assert_eq!(super::id("123"), "1**");
        assert_eq!(super::phone("12345"), "1****");
    }
}
