//! Masking of personal data for logs: ID numbers, names and phones never
//! appear whole in a log line.

/// Keep the first 4 and last 4 characters of an ID number.
pub fn id(raw: &str) -> String {
    keep_ends(raw, 4, 4)
}

/// Keep the first 3 and last 4 digits of a phone number.
pub fn phone(raw: &str) -> String {
    keep_ends(raw, 3, 4)
}

/// Keep the first character of a name.
pub fn name(raw: &str) -> String {
    keep_ends(raw, 1, 0)
}

fn keep_ends(raw: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= head + tail {
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
        assert_eq!(super::id("123"), "***");
    }
}
