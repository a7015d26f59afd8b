//! A calendar day as the statistics count them: `YYYYMMDD` in China
//! Standard Time (UTC+8, the province's clock), whatever the server's zone.

use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::ParseError;

/// China Standard Time: UTC+8, no daylight saving.
const CST_MS: i64 = 8 * 3_600_000;

/// A day, `YYYYMMDD` (a real calendar date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(u32);

impl Day {
    /// Parse `YYYYMMDD`; a fault names `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ParseError> {
        let date = (raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| NaiveDate::parse_from_str(raw, "%Y%m%d").ok())
            .flatten()
            .ok_or_else(|| {
                ParseError::malformed(field, format!("{raw}不是有效日期（应为YYYYMMDD）"))
            })?;
        Ok(Day::of(date))
    }

    fn of(d: NaiveDate) -> Self {
        Day(d.year().max(0) as u32 * 10_000 + d.month() * 100 + d.day())
    }

    /// The day (UTC+8) of the instant `ms` (Unix milliseconds).
    pub fn of_ms(ms: i64) -> Self {
        let local = ms.saturating_add(CST_MS);
        let at = chrono::DateTime::from_timestamp_millis(local)
            .map(|t| t.date_naive())
            .unwrap_or_default();
        Day::of(at)
    }

    /// The days from `self` to `to`, both included (0 when `to` is earlier).
    pub fn days_to(self, to: Day) -> i64 {
        match (self.date(), to.date()) {
            (Some(a), Some(b)) => (b - a).num_days() + 1,
            _ => 0,
        }
    }

    fn date(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt((self.0 / 10_000) as i32, (self.0 / 100) % 100, self.0 % 100)
    }

    /// `YYYYMMDD` as a number (sorts as the days do).
    pub fn number(self) -> u32 {
        self.0
    }

    /// The day of a stored number; `None` unless it is a date.
    pub fn from_number(n: u32) -> Option<Self> {
        Day(n).date().map(|_| Day(n))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_strictly_and_instants_fall_on_china_s_day() {
        let d = Day::parse("20261129", "from").unwrap();
        assert_eq!(d.to_string(), "20261129");
        for bad in ["2026112", "20261131", "2026-11-29", "abcdefgh", "202611290"] {
            let e = Day::parse(bad, "from").unwrap_err();
            assert_eq!(e.field, "from", "{bad}");
        }
        // 2026-11-29T16:00:00Z is already the 30th in Hefei
        let ms = 1_795_968_000_000;
        assert_eq!(Day::of_ms(ms).to_string(), "20261130");
        assert_eq!(Day::of_ms(ms - 1).to_string(), "20261129");
        assert_eq!(d.days_to(Day::parse("20261130", "to").unwrap()), 2);
        assert_eq!(d.days_to(Day::parse("20261128", "to").unwrap()), 0);
        assert_eq!(Day::from_number(d.number()), Some(d));
        assert_eq!(Day::from_number(20261131), None);
    }
}
